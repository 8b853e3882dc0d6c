package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	createBody   = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","arguments":{"title":"t"}}}`
	noteReadBody = `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"notes://x"}}`
	batchBody    = `[` + createBody + `,` + noteReadBody + `]`
)

func TestOperations(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		want    [][2]string
		wantErr bool
	}{
		{name: "tool call", body: createBody, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "resource read", body: noteReadBody, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "prompt", body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}}`, want: [][2]string{{"prompts/get", "summarize"}}},
		{
			name: "completion of a prompt argument",
			body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"tag","value":"w"}}}`,
			want: [][2]string{{"completion/complete", "summarize"}},
		},
		{
			name: "completion of a resource template",
			body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://{id}"},"argument":{"name":"id","value":"1"}}}`,
			want: [][2]string{{"completion/complete", "notes://{id}"}},
		},
		{name: "no params", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, want: [][2]string{{"tools/list", ""}}},
		{name: "batch", body: batchBody, want: [][2]string{{"tools/call", "notes_create"}, {"resources/read", "notes://x"}}},
		{name: "batch duplicates dropped", body: `[` + createBody + `,` + createBody + `]`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "batch skips responses", body: `[{"jsonrpc":"2.0","id":9,"result":{}},` + noteReadBody + `]`, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "batch after white space", body: "\r\n [" + noteReadBody + "]", want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "response", body: `{"jsonrpc":"2.0","id":1,"result":{}}`, want: nil},
		{name: "empty batch", body: `[]`, want: nil},
		{name: "keys are case-sensitive", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping","params":{"name":"notes_create","NAME":"whoami"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "the method decides the field", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x","uri":"notes://x"}}`, want: [][2]string{{"resources/read", "notes://x"}}},
		{name: "other fields may have any type", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","uri":1,"ref":"x"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "empty", body: ``, want: nil},
		{name: "not JSON", body: `hello`, wantErr: true},
		{name: "duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"notes_create"}}`, wantErr: true},
		{name: "duplicate method", body: `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"notes_create"}}`, wantErr: true},
		{name: "name of the wrong type", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["notes_create"]}}`, wantErr: true},
		{name: "method of the wrong type", body: `{"jsonrpc":"2.0","id":1,"method":1}`, wantErr: true},
		{name: "null name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}`, want: [][2]string{{"tools/call", ""}}},
		{name: "escaped keys and values", body: `{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools\/call","params":{"n\u0061me":"notes_\u0063reate"}}`, want: [][2]string{{"tools/call", "notes_create"}}},
		{name: "escaped duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","n\u0061me":"notes_create"}}`, wantErr: true},
		{name: "invalid UTF-8 is replaced", body: "{\"method\":\"tools/call\",\"params\":{\"name\":\"notes_\xff\"}}", want: [][2]string{{"tools/call", "notes_\ufffd"}}},
		{name: "white space everywhere", body: " { \"method\" : \"prompts/get\" , \"params\" : { \"name\" : \"summarize\" } } \n", want: [][2]string{{"prompts/get", "summarize"}}},
		{name: "duplicate key among many", body: `{"method":"tools/call","params":{` + manyKeys(40) + `,"name":"a","k7":1}}`, wantErr: true},
		{name: "many keys", body: `{"method":"tools/call","params":{` + manyKeys(40) + `,"name":"a"}}`, want: [][2]string{{"tools/call", "a"}}},
		{name: "null params", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, want: [][2]string{{"tools/call", ""}}},
		{name: "params not an object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`, wantErr: true},
		{name: "ref not an object", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":null}}`, wantErr: true},
		{name: "batch element not an object", body: `[` + createBody + `,null]`, wantErr: true},
		{name: "a second message after the first", body: noteReadBody + createBody, wantErr: true},
		{name: "trailing data", body: createBody + ` x`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := operations([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("operations(%s) error = %v, want error: %v", tt.body, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("operations(%s) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// manyKeys is n members "k0":0, "k1":1, … of a JSON object.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", "k"+strconv.Itoa(i), i)
	}
	return b.String()
}

func FuzzOperations(f *testing.F) {
	for _, s := range []string{createBody, noteReadBody, batchBody, ``, `[`, `{`, `[1,2]`, `null`, `[null]`, `{"method":1}`,
		`{"method":"m","params":{"ref":{"name":"n"}}}`, `{"method":"m","params":[]}`, " [" + noteReadBody + "]",
		`{"m\u0065thod":"tools/call","params":{"name":"a","n\u0061me":"b"}}`, `{"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x\"y"}}}`,
		noteReadBody + createBody} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := operations(body)
		// The same reading as encoding/json's decoder, except that a body
		// with more than one JSON value is refused (the decoder read the
		// first only).
		want, wantErr := decodedOperations(body)
		if trimmed := bytes.Trim(body, " \t\r\n"); wantErr == nil && len(trimmed) > 0 && !json.Valid(trimmed) {
			want, wantErr = nil, errMalformed
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("operations(%q) error = %v, decodedOperations: %v", body, err, wantErr)
		}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Fatalf("operations(%q) (-decodedOperations +operations):\n%s", body, diff)
		}
		if err != nil {
			return
		}
		for i, op := range ops {
			if op[0] == "" {
				t.Fatalf("operations(%q) has an operation without a method: %q", body, ops)
			}
			if slices.Contains(ops[:i], op) {
				t.Fatalf("operations(%q) has a duplicate: %q", body, ops)
			}
		}
	})
}

// decodedOperations is what operations was before it walked the bytes:
// the same reading with encoding/json's decoder (a map per object). The
// fuzz test holds operations to it.
func decodedOperations(body []byte) ([][2]string, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil // no operation; the MCP layer refuses the empty body
	}
	var raws []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errMalformed
		}
	} else {
		raws = []json.RawMessage{trimmed}
	}
	var ops [][2]string
	for _, raw := range raws {
		msg, err := decodedFields(raw)
		if err != nil {
			return nil, err
		}
		mraw, ok := msg["method"]
		if !ok {
			continue // a response: no operation
		}
		var method string
		if json.Unmarshal(mraw, &method) != nil || method == "" {
			return nil, errMalformed
		}
		var params map[string]json.RawMessage
		if praw, ok := msg["params"]; ok && !bytes.Equal(bytes.TrimSpace(praw), []byte("null")) {
			if params, err = decodedFields(praw); err != nil {
				return nil, err
			}
		}
		var name string
		switch method {
		case "tools/call", "prompts/get":
			name, err = decodedStringField(params, "name")
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			name, err = decodedStringField(params, "uri")
		case "completion/complete":
			if rraw, ok := params["ref"]; ok {
				var ref map[string]json.RawMessage
				if ref, err = decodedFields(rraw); err == nil {
					var typ string
					if typ, err = decodedStringField(ref, "type"); err == nil {
						field := "name"
						if typ == "ref/resource" {
							field = "uri"
						}
						name, err = decodedStringField(ref, field)
					}
				}
			}
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ops, [2]string{method, name}) {
			ops = append(ops, [2]string{method, name})
		}
	}
	return ops, nil
}

// decodedFields decodes a JSON object, refusing duplicate keys.
func decodedFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errMalformed
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, errMalformed
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errMalformed
		}
		if _, dup := out[key]; dup {
			return nil, errors.New("the request body repeats the key " + strconv.Quote(key))
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, errMalformed
	}
	return out, nil
}

// decodedStringField returns m[key] when it is a string, "" when absent.
func decodedStringField(m map[string]json.RawMessage, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", errMalformed
	}
	return s, nil
}

// TestOperationsManyDistinct: a batch as large as a body may be, of
// distinct operations, and repeated ones, is read in full with every
// operation once. (Before the set, the de-duplication was quadratic: a
// 4 MiB body of 215 000 operations took over a minute of CPU.)
func TestOperationsManyDistinct(t *testing.T) {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for ; b.Len() < 4<<20-4096; n++ {
		b.WriteString(`{"method":"m` + strconv.Itoa(n) + `"},`)
	}
	for i := range 100 { // repeated: listed once
		b.WriteString(`{"method":"m` + strconv.Itoa(i) + `"},`)
	}
	b.WriteString(`{"method":"m0"}]`)
	ops, err := operations(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != n {
		t.Errorf("%d distinct operations (and repeats) gave %d, want %d", n, len(ops), n)
	}
	seen := map[[2]string]bool{}
	for _, op := range ops {
		if seen[op] {
			t.Fatalf("operation %q listed twice", op)
		}
		seen[op] = true
	}
}
