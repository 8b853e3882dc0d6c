// Command remotemcp serves a remote MCP server over Streamable HTTP: the
// stateless 2026-07-28 revision and the legacy session-based revisions on one
// /mcp endpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "remotemcp:", err)
		os.Exit(2)
	}
}

var errHelp = errors.New("help requested")

// run is main with its dependencies injected, for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "signing-key" {
		return signingKeyCommand(args[1:], stdout, stderr)
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		gcCtx, stop := context.WithCancel(ctx)
		defer stop()
		go gcFloor(gcCtx, gcHeadroom)
	}
	return serve(ctx, cfg, stdout)
}
