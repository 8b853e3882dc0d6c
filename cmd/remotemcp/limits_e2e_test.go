package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// batchOf is a 2025-03-26 JSON-RPC batch of n tools/list calls.
func batchOf(n int) string {
	calls := make([]string, n)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, i+10)
	}
	return "[" + strings.Join(calls, ",") + "]"
}

// TestEndToEndBatchLimits: --max-batch-messages refuses a larger batch
// whole with a JSON-RPC error, and --max-response-bytes turns the
// responses past it into errors, so that a small body cannot make the
// server produce a huge answer.
func TestEndToEndBatchLimits(t *testing.T) {
	s := startServer(t, "--max-batch-messages", "8", "--max-response-bytes", "65536")
	ctx := t.Context()
	sid := s.initLegacy(t, ctx)
	hdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-03-26"}}

	r := s.post(t, ctx, hdr, batchOf(9))
	if r.status != http.StatusBadRequest || len(r.msgs) != 1 || r.msgs[0].Error == nil || r.msgs[0].Error.Code != -32600 ||
		!strings.Contains(r.msgs[0].Error.Message, "at most 8 messages") {
		t.Errorf("batch of 9 = %d %s, want 400 with -32600 naming the limit", r.status, r.body)
	}

	// The conformance fixtures list enough tools that 8 lists pass 64 KiB (about 12 KB each).
	r = s.post(t, ctx, hdr, batchOf(8))
	if r.status != http.StatusOK || len(r.msgs) != 8 {
		t.Fatalf("batch of 8 = %d, %d messages, want 200 with 8: %.300s", r.status, len(r.msgs), r.body)
	}
	ok, size := 0, 0
	for _, m := range r.msgs {
		if m.Error == nil {
			ok++
			size += len(m.Result)
		} else if m.Error.Code != -32000 || !strings.Contains(m.Error.Message, "at most 65536 bytes") {
			t.Errorf("response error %d %q, want -32000 naming the limit", m.Error.Code, m.Error.Message)
		}
	}
	if ok == 8 || size > 65536 {
		t.Errorf("%d of 8 lists answered (%d bytes); want the ones past 65536 bytes refused", ok, size)
	}
}

// TestEndToEndUserLimits: --max-sessions-per-user refuses one more legacy
// session with 429 and a JSON-RPC error, and --max-notes-per-user makes
// notes_create a tool error that names the limit and what to do.
func TestEndToEndUserLimits(t *testing.T) {
	s := startServer(t, "--max-sessions-per-user", "2", "--max-notes-per-user", "2")
	ctx := t.Context()
	s.initLegacy(t, ctx)
	s.initLegacy(t, ctx)
	r := s.post(t, ctx, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1.0.0"}}}`)
	if r.status != http.StatusTooManyRequests || len(r.msgs) != 1 || r.msgs[0].Error == nil || !strings.Contains(r.msgs[0].Error.Message, "too many open sessions") {
		t.Errorf("a third session = %d %s, want 429 with a JSON-RPC error", r.status, r.body)
	}

	hdr := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"notes_create"}}
	create := func(title string) (isError bool, text string) {
		r := s.post(t, ctx, hdr, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_create","arguments":{"title":"`+title+`"},`+
			`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
		var res struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		r.last(t).result(t, &res)
		if len(res.Content) == 0 {
			t.Fatalf("notes_create %s: no content: %s", title, r.body)
		}
		return res.IsError, res.Content[0].Text
	}
	for _, title := range []string{"one", "two"} {
		if isError, text := create(title); isError {
			t.Fatalf("notes_create %s: %s", title, text)
		}
	}
	if isError, text := create("three"); !isError || !strings.Contains(text, "already have 2 notes") || !strings.Contains(text, "notes_delete") {
		t.Errorf("a third note = %v %q, want a tool error naming the limit and notes_delete", isError, text)
	}
}
