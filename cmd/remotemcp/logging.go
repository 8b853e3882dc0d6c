package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// sdkChatter are the messages the go-sdk server logs at INFO for every
// connection it makes. The legacy era rebuilds its session from the store
// on every request, so each request would log all three (and
// "disconnected" reads like an error): they are demoted to DEBUG. These are
// the messages of go-sdk v1.8.0 (mcp/server.go: Server.Connect and the
// session's disconnect); TestSDKChatterMessages pins them, so that an
// upgrade that renames one fails there rather than flooding the log again.
var sdkChatter = map[string]bool{
	"server connecting":           true,
	"server session connected":    true,
	"server session disconnected": true,
}

// sdkLogger is the logger handed to the go-sdk's ServerOptions.Logger: log,
// with the per-connection chatter at DEBUG.
func sdkLogger(log *slog.Logger) *slog.Logger {
	return slog.New(demoteHandler{next: log.Handler(), msgs: sdkChatter})
}

// demoteHandler logs the INFO records whose message is in msgs at DEBUG,
// and every other record as next would.
type demoteHandler struct {
	next slog.Handler
	msgs map[string]bool
}

func (h demoteHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && h.msgs[r.Message] {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.next.Handle(ctx, r)
}

func (h demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteHandler{next: h.next.WithAttrs(attrs), msgs: h.msgs}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{next: h.next.WithGroup(name), msgs: h.msgs}
}

// redisLogger routes go-redis' own log lines (connection pool failures,
// sentinel and cluster changes), which it otherwise prints as plain text
// on stderr, into slog at WARN: every one of them reports something that
// went wrong. go-redis has one logger per process (redis.SetLogger).
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	l.log.WarnContext(ctx, msg)
}
