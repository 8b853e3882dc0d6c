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
