package mcpserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// TestSessionRecordKeepsWhatIsUsed: a legacy session record keeps, of the
// client's initialize params, the protocol version, the roots, sampling
// and elicitation capabilities and the client's name, title and version;
// a megabyte of experimental capabilities, extensions, _meta and
// clientInfo extras is not kept.
func TestSessionRecordKeepsWhatIsUsed(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{MaxBodyBytes: 8 << 20})
	junk := strings.Repeat("x", 1<<20)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"j":%q},"protocolVersion":%q,`+
		`"capabilities":{"experimental":{"j":%q},"extensions":{"a/b":{"j":%q}},"roots":{"listChanged":true},"sampling":{"tools":{}},"elicitation":{"form":{},"url":{}}},`+
		`"clientInfo":{"name":"client","title":"Client","version":"1.0","description":%q,"websiteUrl":"https://example.com"}}}`,
		junk, mcpserver.Version20251125, junk, junk, junk)
	resp := e.do(t, request{token: "alice", body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	sess, err := e.stores.Sessions.Get(t.Context(), sid)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	rec, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("session record after a 4 MB initialize: %d B", len(rec))
	if len(rec) > 1024 {
		t.Errorf("session record is %d B, want at most 1024: %s", len(rec), rec)
	}
	want := &mcp.InitializeParams{
		ProtocolVersion: mcpserver.Version20251125,
		Capabilities: &mcp.ClientCapabilities{
			//lint:ignore SA1019 legacy sessions still negotiate sampling
			Sampling:    &mcp.SamplingCapabilities{Tools: &mcp.SamplingToolsCapabilities{}},
			Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
		},
		ClientInfo: &mcp.Implementation{Name: "client", Title: "Client", Version: "1.0"},
	}
	want.Capabilities.Roots.ListChanged = true //lint:ignore SA1019 legacy sessions still negotiate roots
	if diff := cmp.Diff(want, sess.State.InitializeParams); diff != "" {
		t.Errorf("kept initialize params (-want +got):\n%s", diff)
	}
}

// TestSessionRecordRefusesLongClientInfo: a clientInfo field past its cap
// is a clear invalid-params error, and no session is created.
func TestSessionRecordRefusesLongClientInfo(t *testing.T) {
	e := newEnv(t, nil)
	for _, field := range []string{"name", "title", "version"} {
		t.Run(field, func(t *testing.T) {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"c","version":"1",%q:%q}}}`,
				mcpserver.Version20251125, field, strings.Repeat("n", 257))
			resp := e.do(t, request{token: "alice", body: body})
			msg := lastMessage(t, resp)
			if resp.StatusCode != http.StatusBadRequest || msg.Error == nil || msg.Error.Code != -32602 ||
				!strings.Contains(msg.Error.Message, "clientInfo."+field+" is longer than 256 bytes") {
				t.Errorf("initialize with a 257-byte clientInfo.%s = %d, %+v; want 400, invalid params naming it", field, resp.StatusCode, msg.Error)
			}
			if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
				t.Errorf("a session was created: %s", sid)
			}
		})
	}
}
