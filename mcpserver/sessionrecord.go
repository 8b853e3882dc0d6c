package mcpserver

import (
	"errors"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Caps on what a session record keeps of the client's initialize params.
const (
	maxClientInfoBytes      = 256 // clientInfo.name, .title and .version, each
	maxProtocolVersionBytes = 64
)

// keptInitializeParams returns what a session record keeps of a client's
// initialize params: what the server and the go-sdk read, no more. That
// is the protocol version, the capabilities the server may use (roots,
// sampling, elicitation: each a few flags; experimental and extensions
// are dropped), and the client's name, title and version (for logs and
// tools). _meta and the rest of clientInfo (description, website, icons)
// are dropped. A field past its cap is an error that names it: the
// client sent something no client needs, and the session is refused
// rather than truncated.
func keptInitializeParams(p *mcp.InitializeParams) (*mcp.InitializeParams, error) {
	if p == nil {
		return nil, nil
	}
	if len(p.ProtocolVersion) > maxProtocolVersionBytes {
		return nil, errors.New("protocolVersion is longer than " + strconv.Itoa(maxProtocolVersionBytes) + " bytes")
	}
	kept := &mcp.InitializeParams{ProtocolVersion: p.ProtocolVersion}
	if c := p.Capabilities; c != nil {
		kept.Capabilities = &mcp.ClientCapabilities{
			Roots: c.Roots, RootsV2: c.RootsV2, Sampling: c.Sampling, Elicitation: c.Elicitation, //lint:ignore SA1019 legacy sessions still negotiate roots and sampling
		}
	}
	if ci := p.ClientInfo; ci != nil {
		for _, f := range []struct{ name, v string }{{"name", ci.Name}, {"title", ci.Title}, {"version", ci.Version}} {
			if len(f.v) > maxClientInfoBytes {
				return nil, errors.New("clientInfo." + f.name + " is longer than " + strconv.Itoa(maxClientInfoBytes) + " bytes")
			}
		}
		kept.ClientInfo = &mcp.Implementation{Name: ci.Name, Title: ci.Title, Version: ci.Version}
	}
	return kept, nil
}
