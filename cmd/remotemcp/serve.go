package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/redis/go-redis/v9"
)

// serve runs the server of cfg on its listener until ctx ends, then
// drains it (remotemcp.Server.Serve).
func serve(ctx context.Context, cfg *config, stdout io.Writer) error {
	log := newLogger(cfg, stdout)
	// go-redis logs through one logger per process: into slog with the rest.
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.publicURLDerived {
		// With --listen host:0 the port is known only now.
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.PublicURL.Host = net.JoinHostPort(cfg.PublicURL.Hostname(), port)
	}
	stopMetrics, err := listenMetrics(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()
	a, err := build(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.close()
	log.Info("remotemcp listening", "addr", ln.Addr().String(), "endpoint", cfg.endpoint(), "auth", cfg.Auth, "fixtures", cfg.Fixtures)
	return a.handler.Serve(ctx, ln)
}
