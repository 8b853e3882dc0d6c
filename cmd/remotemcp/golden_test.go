package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenWire pins what the product surface looks like on the wire in the
// 2026-07-28 era: discovery, and the tool, resource and prompt lists with
// their schemas and annotations. Regenerate with go test ./... -update.
func TestGoldenWire(t *testing.T) {
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() { srv.Close(); a.close() })

	for _, method := range []string{"server/discover", "tools/list", "resources/list", "resources/templates/list", "prompts/list"} {
		t.Run(method, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"_meta":{` +
				`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
			req, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2026-07-28")
			req.Header.Set("Mcp-Method", method)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := withoutVersion(t, lastMessage(t, resp))
			path := filepath.Join("..", "..", "testdata", strings.ReplaceAll(method, "/", "_")+".golden.json")
			if *update {
				var pretty bytes.Buffer
				json.Indent(&pretty, got, "", "  ")
				pretty.WriteByte('\n')
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			var w, g any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("%s on the wire differs from %s (-want +got):\n%s", method, path, diff)
			}
		})
	}
}

// lastMessage returns the JSON-RPC message of a JSON response, or the last
// data line of an SSE response.
func lastMessage(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var last []byte
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && d != "" {
			last = []byte(d)
		}
	}
	if last == nil {
		t.Fatal("no message in the SSE response")
	}
	return last
}

// withoutVersion is msg with the serverInfo version, which make build
// stamps from git, replaced by "VERSION", after checking that it is the
// binary's version.
func withoutVersion(t *testing.T, msg []byte) []byte {
	t.Helper()
	info := `"io.modelcontextprotocol/serverInfo":{"name":"remotemcp","title":"remotemcp","version":`
	stamped, err := json.Marshal(version)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(msg, []byte(info+string(stamped))); n != 1 {
		t.Fatalf("the message names serverInfo with version %s %d times, want once:\n%s", stamped, n, msg)
	}
	return bytes.Replace(msg, []byte(info+string(stamped)), []byte(info+`"VERSION"`), 1)
}
