package mcpserver

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSSEWriter checks the bytes of each thing an SSE response carries.
func TestSSEWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	sse := startSSE(rec, "S")
	sse.prime(4)
	sse.events([]Event{{Seq: 5, Data: []byte(`{"a":1}`)}, {Seq: 6, Data: []byte(`{"b":2}`)}})
	sse.events(nil)
	sse.keepAlive()
	sse.retry(0)
	sse.retry(1500 * time.Millisecond)
	if err := sse.flush(); err != nil {
		t.Fatal(err)
	}
	want := "id: S-4\ndata: \n\n" +
		"id: S-5\nevent: message\ndata: {\"a\":1}\n\n" +
		"id: S-6\nevent: message\ndata: {\"b\":2}\n\n" +
		": keep-alive\n\n" +
		"retry: 1500\n\n"
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if !rec.Flushed || rec.Code != 200 {
		t.Errorf("status %d, flushed %v; want 200, flushed", rec.Code, rec.Flushed)
	}
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
