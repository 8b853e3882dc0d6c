package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// goroutineDump is a server's goroutine profile in its text form
// (/debug/pprof/goroutine?debug=1): goroutines counted by stack.
type goroutineDump map[string]int

// goroutines fetches the server's goroutine profile, saves it as file
// under dir, and returns it counted by stack (the functions of the stack,
// innermost first, without addresses).
func (s *server) goroutines(dir, file string) (goroutineDump, error) {
	resp, err := http.Get("http://" + s.debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, file), raw, 0o644); err != nil {
		return nil, err
	}
	return parseGoroutines(string(raw)), nil
}

// parseGoroutines reads the debug=1 goroutine profile: blocks separated
// by blank lines, each "N @ addresses" then "#\taddr\tfunc+off\tfile:line"
// lines.
func parseGoroutines(text string) goroutineDump {
	d := goroutineDump{}
	for _, block := range strings.Split(text, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if strings.HasPrefix(lines[0], "goroutine profile:") { // the header, on the first record
			lines = lines[1:]
		}
		if len(lines) == 0 {
			continue
		}
		n, _, ok := strings.Cut(lines[0], " @ ")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		var funcs []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == "#" {
				fn := f[2]
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				funcs = append(funcs, fn)
			}
		}
		d[strings.Join(funcs, " ← ")] += count
	}
	return d
}

// goroutineGrowth lists the stacks with more goroutines in last than in
// first, most growth first, at most n.
func goroutineGrowth(first, last goroutineDump, n int) []string {
	type grown struct {
		stack string
		by    int
	}
	var g []grown
	for stack, c := range last {
		if d := c - first[stack]; d > 0 {
			g = append(g, grown{stack, d})
		}
	}
	sort.Slice(g, func(i, j int) bool { return g[i].by > g[j].by || g[i].by == g[j].by && g[i].stack < g[j].stack })
	var out []string
	for _, x := range g[:min(n, len(g))] {
		stack := x.stack
		// Where it waits (innermost) and who started it (outermost).
		if fs := strings.Split(stack, " ← "); len(fs) > 6 {
			stack = strings.Join(fs[:2], " ← ") + " ← … ← " + strings.Join(fs[len(fs)-4:], " ← ")
		}
		out = append(out, fmt.Sprintf("+%d %s", x.by, stack))
	}
	return out
}

// idleConn reports whether stack is net/http's goroutine of a keep-alive
// connection waiting for its next request: there is one per connection the
// load generator keeps open, however many that is at the moment.
func idleConn(stack string) bool {
	return strings.HasSuffix(stack, "net/http.(*conn).serve") && strings.Contains(stack, "net/http.(*connReader).Read")
}

// count is the number of goroutines in d, less those of idle keep-alive
// connections if serverOnly.
func (d goroutineDump) count(serverOnly bool) int {
	n := 0
	for stack, c := range d {
		if !serverOnly || !idleConn(stack) {
			n += c
		}
	}
	return n
}
