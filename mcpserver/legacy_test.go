package mcpserver

import (
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

func TestParseEventID(t *testing.T) {
	stream := rand.Text()
	for _, tt := range []struct {
		name   string
		id     string
		stream string
		seq    int64
		ok     bool
	}{
		{"request stream", stream + "-7", stream, 7, true},
		{"priming event", stream + "-0", stream, 0, true},
		{"GET stream", "_-12", "_", 12, true},
		{"max seq", stream + "-9223372036854775807", stream, 1<<63 - 1, true},
		{"empty", "", "", 0, false},
		{"no dash", stream, "", 0, false},
		{"no stream", "-7", "", 0, false},
		{"no seq", stream + "-", "", 0, false},
		{"negative seq", stream + "--7", "", 0, false},
		{"seq overflow", stream + "-9223372036854775808", "", 0, false},
		{"hex seq", stream + "-0x1f", "", 0, false},
		{"dash in stream", "a-b-7", "", 0, false},
		{"space in stream", "a b-7", "", 0, false},
		{"control in stream", "a\x00b-7", "", 0, false},
		{"non-ASCII stream", "é-7", "", 0, false},
		{"stream too long", strings.Repeat("A", 129) + "-7", "", 0, false},
		{"id too long", strings.Repeat("A", 128) + "-" + strings.Repeat("0", 80) + "7", "", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, seq, ok := ParseEventID(tt.id)
			if ok != tt.ok || s != tt.stream || seq != tt.seq {
				t.Errorf("ParseEventID(%q) = %q, %d, %v; want %q, %d, %v", tt.id, s, seq, ok, tt.stream, tt.seq, tt.ok)
			}
		})
	}
}

func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"_-0", "_-12", rand.Text() + "-3", "A-+1", "A-007", "a-b-1", "-1", "", "x-", "\xff-1"} {
		f.Add(s, "ABC", int64(0))
	}
	f.Add("", rand.Text(), int64(42))
	f.Add("", "_", int64(1<<63-1))
	f.Fuzz(func(t *testing.T, id, stream string, seq int64) {
		// Whatever a client sends parses into a stream ID we could have
		// minted and a sequence number, and back to the same values.
		if s, n, ok := ParseEventID(id); ok {
			if n < 0 {
				t.Fatalf("ParseEventID(%q) seq = %d < 0", id, n)
			}
			if s != standaloneStream && (!validSessionID(s) || strings.Contains(s, "-")) {
				t.Fatalf("ParseEventID(%q) stream = %q, not one we mint", id, s)
			}
			s2, n2, ok2 := ParseEventID(formatEventID(s, n))
			if !ok2 || s2 != s || n2 != n {
				t.Fatalf("ParseEventID(formatEventID(%q, %d)) = %q, %d, %v", s, n, s2, n2, ok2)
			}
		}
		// Every ID we format parses back.
		if seq >= 0 && (stream == standaloneStream || (validSessionID(stream) && !strings.Contains(stream, "-"))) {
			s, n, ok := ParseEventID(formatEventID(stream, seq))
			if !ok || s != stream || n != seq {
				t.Fatalf("ParseEventID(formatEventID(%q, %d)) = %q, %d, %v", stream, seq, s, n, ok)
			}
		}
	})
}

func TestValidSessionID(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   string
		want bool
	}{
		{"minted", rand.Text(), true},
		{"visible ASCII", "!~azAZ09-_.", true},
		{"max length", strings.Repeat("a", 128), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"newline", "a\nb", false},
		{"DEL", "a\x7fb", false},
		{"non-ASCII", "sessión", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validSessionID(tt.id); got != tt.want {
				t.Errorf("validSessionID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func FuzzValidSessionID(f *testing.F) {
	for _, s := range []string{"", rand.Text(), "a b", "\x00", "é", strings.Repeat("a", 129), "\r\nX-Evil: 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !validSessionID(id) {
			return
		}
		// A valid ID is safe to echo in a header and to log.
		if len(id) == 0 || len(id) > 128 {
			t.Fatalf("validSessionID accepted %d bytes", len(id))
		}
		if !utf8.ValidString(id) || strings.TrimSpace(id) != id || strings.ContainsAny(id, " \t\r\n\x00\x7f") {
			t.Fatalf("validSessionID accepted %q", id)
		}
		for _, r := range id {
			if r < 0x21 || r > 0x7e {
				t.Fatalf("validSessionID accepted %q with %U", id, r)
			}
		}
	})
}

func TestAccepts(t *testing.T) {
	for _, tt := range []struct {
		name     string
		values   []string
		jsonOK   bool
		streamOK bool
	}{
		{"none", nil, false, false},
		{"empty", []string{""}, false, false},
		{"both", []string{"application/json, text/event-stream"}, true, true},
		{"both in two headers", []string{"application/json", "text/event-stream"}, true, true},
		{"with parameters", []string{"application/json;q=0.9 , text/event-stream; q=1"}, true, true},
		{"case", []string{"Application/JSON, Text/Event-Stream"}, true, true},
		{"wildcard", []string{"*/*"}, true, true},
		{"type wildcards", []string{"application/*, text/*"}, true, true},
		{"json only", []string{"application/json"}, true, false},
		{"sse only", []string{"text/event-stream"}, false, true},
		{"other types", []string{"text/html, application/xml"}, false, false},
		{"suffix is not a match", []string{"application/jsonx, text/event-streams"}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jsonOK, streamOK := accepts(tt.values)
			if jsonOK != tt.jsonOK || streamOK != tt.streamOK {
				t.Errorf("accepts(%q) = %v, %v; want %v, %v", tt.values, jsonOK, streamOK, tt.jsonOK, tt.streamOK)
			}
		})
	}
}

func FuzzAccepts(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json, text/event-stream", "text/*;q=0", ",,;", "APPLICATION/JSON"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		jsonOK, streamOK := accepts([]string{v})
		// A header split over several lines means the same.
		if j, s := accepts(strings.Split(v, ",")); j != jsonOK || s != streamOK {
			t.Fatalf("accepts(%q) = %v, %v but split = %v, %v", v, jsonOK, streamOK, j, s)
		}
		// Media types are case-insensitive (ASCII only: RFC 9110 tokens).
		upper := strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}, v)
		if j, s := accepts([]string{upper}); j != jsonOK || s != streamOK {
			t.Fatalf("accepts(%q) = %v, %v but accepts(%q) = %v, %v", v, jsonOK, streamOK, upper, j, s)
		}
		// Adding a type only widens what is accepted.
		if j, s := accepts([]string{v, "application/json"}); !j || s != streamOK {
			t.Fatalf("accepts(%q, application/json) = %v, %v", v, j, s)
		}
		if j, s := accepts([]string{v + ",*/*"}); !j || !s {
			t.Fatalf("accepts(%q + */*) = %v, %v", v, j, s)
		}
	})
}

func TestDecodeBody(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		methods []string // "" for a response
		batch   bool
		wantErr bool
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, []string{"tools/list"}, false, false},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, []string{"notifications/initialized"}, false, false},
		{"response", `{"jsonrpc":"2.0","id":"s.1","result":{}}`, []string{""}, false, false},
		{"batch", ` [{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]`, []string{"a", "b"}, true, false},
		{"empty batch", `[]`, nil, true, true},
		{"batch with garbage", `[{"jsonrpc":"2.0","id":1,"method":"a"},1]`, nil, true, true},
		{"malformed", `{"jsonrpc":`, nil, false, true},
		{"empty", ``, nil, false, true},
		{"not jsonrpc 2.0", `{"id":1,"method":"a"}`, nil, false, true},
		{"scalar", `42`, nil, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msgs, batch, err := decodeBody([]byte(tt.body), DefaultMaxBatchMessages)
			if (err != nil) != tt.wantErr {
				t.Fatalf("decodeBody error = %v, want error %v", err, tt.wantErr)
			}
			if batch != tt.batch {
				t.Errorf("decodeBody batch = %v, want %v", batch, tt.batch)
			}
			if err != nil {
				return
			}
			var methods []string
			for _, m := range msgs {
				method := ""
				if r, ok := m.(*jsonrpc.Request); ok {
					method = r.Method
				}
				methods = append(methods, method)
			}
			if diff := cmp.Diff(tt.methods, methods); diff != "" {
				t.Errorf("decodeBody methods (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsModernRequest(t *testing.T) {
	const meta = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	const plain = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	for _, tt := range []struct {
		name   string
		header string
		body   string
		want   bool
	}{
		{"modern header", "2026-07-28", plain, true},
		{"future header", "2099-01-01", plain, true},
		{"garbage header", "banana", plain, true},
		{"legacy header", "2025-06-18", meta, false},
		{"legacy header padded", " 2025-11-25 ", meta, false},
		{"2024-11-05 header", "2024-11-05", plain, false},
		{"no header, meta version", "", meta, true},
		{"no header, no meta", "", plain, false},
		{"blank header, meta version", "  ", meta, true},
		{"no header, batch", "", "[" + meta + "]", false},
		{"no header, malformed", "", `{"params":`, false},
		{"no header, empty", "", "", false},
		{"no header, initialize", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := isModernRequest(tt.header, []byte(tt.body)); got != tt.want {
				t.Errorf("isModernRequest(%q, %s) = %v, want %v", tt.header, tt.body, got, tt.want)
			}
		})
	}
}

func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"x","result":{}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`[]`, `[`, `null`, `{"params":null}`, `{"params":{"_meta":null}}`, " \n[1]", "",
	} {
		f.Add("", []byte(s))
		f.Add("2025-06-18", []byte(s))
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		msgs, batch, err := decodeBody(body, DefaultMaxBatchMessages)
		if err == nil && len(msgs) == 0 {
			t.Fatalf("decodeBody(%q) = no messages, nil error", body)
		}
		if err == nil && !batch && len(msgs) != 1 {
			t.Fatalf("decodeBody(%q) = %d messages, not a batch", body, len(msgs))
		}
		for _, m := range msgs {
			if m == nil {
				t.Fatalf("decodeBody(%q) returned a nil message", body)
			}
		}
		modern := isModernRequest(header, body)
		if strings.TrimSpace(header) != "" && modern != isModernVersion(header) {
			t.Fatalf("isModernRequest(%q, …) = %v, but the header says %v", header, modern, isModernVersion(header))
		}
		if modern && strings.TrimSpace(header) == "" && batch {
			t.Fatalf("isModernRequest(\"\", %q) = true for a batch", body)
		}
	})
}
