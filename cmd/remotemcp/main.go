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
	code := exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode is the exit status for run's error, which it prints to stderr:
// 0 for none or after --help, 2 for any other, on one line, followed by a
// pointer to --help when the command line did not parse.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "remotemcp:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s --help' for the flags and commands.\n", ue.command)
	}
	return 2
}

var errHelp = errors.New("help requested")

// usageError is a command line that does not parse (an unknown flag, a
// flag without its value, a stray argument): main prints it on one line
// with a pointer to --help, rather than the whole usage, which would push
// the error off the screen.
type usageError struct {
	command string // "remotemcp" or "remotemcp signing-key"
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run is main with its dependencies injected, for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "signing-key" {
		return signingKeyCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && isVersionCommand(args[0]) {
		return printVersion(stdout)
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
