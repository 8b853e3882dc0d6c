package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

const (
	modernVersion = "2026-07-28"
	legacyVersion = "2025-11-25"
)

var (
	// modernCall is a 2026-07-28 tools/call: the protocol version, client
	// info and capabilities travel in _meta, as the revision requires.
	modernCallPrefix = []byte(`{"jsonrpc":"2.0","id":`)
	modernCallSuffix = []byte(`,"method":"tools/call","params":{"name":"` + toolName + `","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"` + modernVersion + `","io.modelcontextprotocol/clientInfo":{"name":"mcpbench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`)
	legacyCallSuffix = []byte(`,"method":"tools/call","params":{"name":"` + toolName + `","arguments":{}}}`)
	wantText         = []byte(toolText)
)

// mcpCaller makes tools/call requests on one connection's worth of state.
type mcpCaller struct {
	hc      *http.Client
	url     string
	token   string // bearer token, if any
	session string // legacy session id, if any
	id      int64
	buf     bytes.Buffer
}

func (c *mcpCaller) post(ctx context.Context, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	c.buf.Reset()
	_, err = io.Copy(&c.buf, resp.Body)
	return resp, c.buf.Bytes(), err
}

// modern is one 2026-07-28 tools/call.
func (c *mcpCaller) modern(ctx context.Context) error {
	c.id++
	body := append(strconv.AppendInt(append([]byte(nil), modernCallPrefix...), c.id, 10), modernCallSuffix...)
	resp, out, err := c.post(ctx, body, map[string]string{
		"Mcp-Protocol-Version": modernVersion, "Mcp-Method": "tools/call", "Mcp-Name": toolName,
	})
	return check(resp, out, err)
}

// legacy is one tools/call in the caller's legacy session.
func (c *mcpCaller) legacy(ctx context.Context) error {
	c.id++
	body := append(strconv.AppendInt(append([]byte(nil), modernCallPrefix...), c.id, 10), legacyCallSuffix...)
	resp, out, err := c.post(ctx, body, map[string]string{"Mcp-Protocol-Version": legacyVersion, "Mcp-Session-Id": c.session})
	return check(resp, out, err)
}

func check(resp *http.Response, out []byte, err error) error {
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusErr("tools/call", resp.StatusCode, out)
	}
	if !bytes.Contains(out, wantText) || bytes.Contains(out, []byte(`"isError":true`)) {
		return fmt.Errorf("tools/call: unexpected answer: %.200s", out)
	}
	return nil
}

// initialize opens a legacy session: initialize, then
// notifications/initialized.
func (c *mcpCaller) initialize(ctx context.Context) error {
	resp, out, err := c.post(ctx, []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+legacyVersion+`","capabilities":{},"clientInfo":{"name":"mcpbench","version":"1"}}}`), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusErr("initialize", resp.StatusCode, out)
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	if c.session == "" {
		return errors.New("initialize: no Mcp-Session-Id")
	}
	resp, out, err = c.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`),
		map[string]string{"Mcp-Protocol-Version": legacyVersion, "Mcp-Session-Id": c.session})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return statusErr("notifications/initialized", resp.StatusCode, out)
	}
	return nil
}
