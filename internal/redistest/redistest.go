// Package redistest starts a real redis-server for tests, on a free
// loopback port, with nothing persisted, so that tests can also kill,
// pause and restart it. It needs redis-server on PATH (Debian's
// redis-server package); tests that use it fail, rather than skip, when it
// is missing, because CI must run them.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A Server is one redis-server process started by the test.
type Server struct {
	// Addr is host:port; URL is redis://Addr.
	Addr, URL string

	t     testing.TB
	port  int
	dir   string
	extra []string // more redis-server arguments (StartCluster)
	mu    sync.Mutex
	cmd   *exec.Cmd
}

// Start starts a redis-server and stops it (by its PID) when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

// StartCluster starts a cluster-enabled redis-server that serves every
// slot (a one-node Redis Cluster), and stops it when the test ends.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := startServer(t, true)
	if reply, err := command(s.Addr, "CLUSTER ADDSLOTSRANGE 0 16383"); err != nil || reply != "OK" {
		t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE: %q, %v", reply, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := command(s.Addr, "CLUSTER INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the cluster is not ok within 10s: %q, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startServer(t testing.TB, cluster bool) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server is not installed (apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	var lastErr error
	for range 5 {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr
		if cluster {
			s.extra = []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t)),
				"--cluster-config-file", filepath.Join(s.dir, "nodes.conf")}
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() error {
	cmd := exec.Command("redis-server", append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "no", "--loglevel", "warning"}, s.extra...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr) == nil {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return fmt.Errorf("redis-server on %s did not answer PING within 10s", s.Addr)
}

// ping sends PING and wants +PONG.
func ping(addr string) error {
	reply, err := command(addr, "PING")
	if err == nil && reply != "PONG" {
		err = fmt.Errorf("PING answered %q", reply)
	}
	return err
}

// command sends one inline command and returns its reply: a simple
// string or a bulk string; an error reply is an error.
func command(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("%s answered %q", cmd, line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("%s answered %q", cmd, line)
}

// Kill ends the server with SIGKILL (its PID, nothing else) and waits.
// Killing a killed server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server must be able to die
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart kills the server and starts an empty one on the same port, as a
// Redis restarted without persistence.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 50 { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on %s: %v", s.Addr, err)
}

// Pause stops the server process (SIGSTOP): connections hang, as with a
// network partition. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}
