package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisInfo returns a section of INFO from the Redis at addr.
func redisInfo(addr, section string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rdb.Info(ctx, section).Result()
}

// dbSize is the number of keys in the Redis at addr.
func dbSize(addr string) (int64, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rdb.DBSize(ctx).Result()
}

// commandStats is INFO commandstats: calls per command.
func commandStats(addr string) (map[string]int64, error) {
	s, err := redisInfo(addr, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		// cmdstat_get:calls=3,usec=...
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out, nil
}

// usedMemory is INFO memory's used_memory, in bytes.
func usedMemory(addr string) (int64, error) {
	s, err := redisInfo(addr, "memory")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, nil
}

// A countingProxy sits between a server and Redis and counts round trips:
// on each connection, a round trip starts when the client sends after
// having received (or for the first time). A pipeline or a script is one
// round trip, as it is on the wire; messages Redis pushes to a subscriber
// are none.
type countingProxy struct {
	ln     net.Listener
	target string
	trips  atomic.Int64
}

func newCountingProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, target: target}
	go p.serve()
	return p, nil
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) close() { p.ln.Close() }

func (p *countingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *countingProxy) handle(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	// turn is true while the client has the floor: its next bytes belong to
	// the round trip already counted.
	var mu sync.Mutex
	turn := false
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				mu.Lock()
				turn = false
				mu.Unlock()
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			mu.Lock()
			if !turn {
				turn = true
				p.trips.Add(1)
			}
			mu.Unlock()
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
