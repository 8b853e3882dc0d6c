package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// logLine is one line of a JSON log.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Component string `json:"component"`
}

// parseJSONLog parses every line of out, failing the test on a line that is
// not a JSON object.
func parseJSONLog(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for l := range strings.Lines(out) {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Errorf("a log line is not JSON (%v): %q", err, l)
			continue
		}
		lines = append(lines, ll)
	}
	return lines
}

// TestSDKChatterMessages pins the go-sdk's per-connection messages that
// sdkLogger demotes: a go-sdk server given sdkLogger logs exactly those
// three at DEBUG when a session connects and disconnects, and none of them
// at INFO. If a go-sdk upgrade renames one, the DEBUG half fails: update
// sdkChatter (and the go-sdk version its comment names).
func TestSDKChatterMessages(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
			server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "1"}, &mcp.ServerOptions{Logger: sdkLogger(log.With("component", "mcp"))})
			client := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
			st, ct := mcp.NewInMemoryTransports()
			ctx := t.Context()
			ss, err := server.Connect(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := client.Connect(ctx, ct, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs.Close()
			ss.Wait()

			seen := map[string]string{}
			for _, l := range parseJSONLog(t, buf.String()) {
				if sdkChatter[l.Msg] {
					seen[l.Msg] = l.Level
					if l.Component != "mcp" {
						t.Errorf("%q: component %q, want mcp", l.Msg, l.Component)
					}
				}
			}
			for msg := range sdkChatter {
				lvl, ok := seen[msg]
				switch {
				case level == slog.LevelDebug && lvl != "DEBUG":
					t.Errorf("%q logged at %q, want DEBUG (has the go-sdk renamed it? update sdkChatter)\nlog:\n%s", msg, lvl, buf.String())
				case level == slog.LevelInfo && ok:
					t.Errorf("%q logged at %s with --log-level info", msg, lvl)
				}
			}
		})
	}
}

// TestDemoteHandlerKeepsOthers: messages not in the list, and the listed
// ones at levels other than INFO, pass through unchanged.
func TestDemoteHandlerKeepsOthers(t *testing.T) {
	var buf bytes.Buffer
	log := sdkLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Info("session initialized")
	log.Error("server connecting")
	log.WithGroup("g").With("a", 1).Info("server session connected")
	got := parseJSONLog(t, buf.String())
	want := []logLine{{Level: "INFO", Msg: "session initialized"}, {Level: "ERROR", Msg: "server connecting"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logged %v, want %v", got, want)
	}
}

// TestRedisLogsAreJSON: with --log-format json, what go-redis itself logs
// (here its connection pool failing to dial a closed port) comes out as
// JSON lines with component=redis among the server's, and every line of
// the log is JSON.
func TestRedisLogsAreJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	keyFile := filepath.Join(t.TempDir(), "state.key")
	if err := os.WriteFile(keyFile, []byte(testKeyHex), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--log-format", "json", "--redis-url", "redis://" + closed,
			"--state-key-file", keyFile}, func(string) string { return "" }, stdout, stderr)
	}()
	werr := waitFor(t, 20*time.Second, func() error {
		if out := stdout.String(); !strings.Contains(out, "failed to dial") || !strings.Contains(out, "remotemcp listening") {
			return errors.New("no go-redis dial failure logged yet, or not serving")
		}
		return nil
	})
	if werr == nil {
		// "remotemcp listening" comes just before Serve checks the registry
		// and serves: an answer on the address means it serves, so that the
		// cancel below is a shutdown, not an interrupted start.
		m := regexp.MustCompile(`"addr":"([^"]+)"`).FindStringSubmatch(stdout.String())
		if m == nil {
			werr = errors.New("no listening address logged")
		} else if resp, err := http.Get("http://" + m[1] + "/healthz"); err != nil {
			werr = err
		} else {
			resp.Body.Close()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if werr != nil {
		t.Fatalf("%v; stdout:\n%s", werr, stdout.String())
	}
	var fromRedis bool
	for _, l := range parseJSONLog(t, stdout.String()) {
		if strings.Contains(l.Msg, "failed to dial") {
			fromRedis = true
			if l.Component != "redis" || l.Level != "WARN" {
				t.Errorf("go-redis line %q: component %q level %q, want redis WARN", l.Msg, l.Component, l.Level)
			}
			if strings.HasPrefix(l.Msg, "redis:") {
				t.Errorf("go-redis line keeps its plain-text prefix: %q", l.Msg)
			}
		}
	}
	if !fromRedis {
		t.Error("no go-redis line in the JSON log")
	}
	// go-redis' default logger would have written the line as plain text
	// to the process's stderr (the file it captured at init), not here.
	if s := stderr.String(); s != "" {
		t.Errorf("written to stderr: %q", s)
	}
}
