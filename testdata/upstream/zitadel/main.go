// Command zitadelop runs the example OpenID provider of github.com/zitadel/oidc
// (example/server) on loopback, as the UPSTREAM identity provider of the
// remotemcp end-to-end tests. Unlike the oidc-provider of testdata/oidc it has
// no dynamic client registration: one confidential web client is registered
// from the flags, the way an operator registers remotemcp at a real IdP.
//
// It is a module of its own so that the main module never depends on zitadel;
// the tests build it with `go build` from this folder.
//
// On start it prints one line to stdout and nothing else there:
//
//	ISSUER http://127.0.0.1:PORT
//
// The issuer has no trailing slash and equals the "issuer" of
// /.well-known/openid-configuration. Logs go to stderr.
//
// Users of the example storage (storage.NewUserStore), sub = ID:
//
//	id1  test-user@localhost  verysecure  email test-user@zitadel.ch
//	id2  test-user2           verysecure  email test-user2@zitadel.ch
//
// The login page (GET /login/username?authRequestID=…) is one HTML form,
// POST /login/username, with the fields id (hidden), username and password,
// and an unnamed submit button.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// listFlag collects a flag that may be repeated and may hold a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zitadelop:", err)
		os.Exit(1)
	}
}

func run() error {
	var redirectURIs listFlag
	addr := flag.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on (port 0 picks a free one)")
	clientID := flag.String("client-id", "web", "client_id of the confidential web client")
	clientSecret := flag.String("client-secret", "secret", "client_secret of the confidential web client")
	flag.Var(&redirectURIs, "redirect-uri", "registered redirect URI of the client (repeatable, or comma-separated)")
	usersFile := flag.String("users", "", "JSON file of users (storage.StoreFromFile format) instead of the built-in ones")
	watchStdin := flag.Bool("watch-stdin", false, "exit when standard input reaches EOF (so a parent that dies takes this process with it)")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()
	if len(redirectURIs) == 0 {
		return errors.New("at least one -redirect-uri is required")
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Listen before building the provider: the issuer must carry the real
	// port, which is only known once port 0 has been resolved.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	issuer := "http://" + ln.Addr().String()

	// WebClient is the example's confidential client: application type web,
	// token endpoint auth client_secret_basic (the library also accepts the
	// secret in the form body, as op.Config.AuthMethodPost is on in
	// exampleop), response type code, grants authorization_code,
	// refresh_token and token exchange, opaque Bearer access tokens, and
	// dev mode, which is what allows http:// redirect URIs.
	// RegisterClients fills a package-level map that NewStorage reads, so it
	// must come first.
	storage.RegisterClients(storage.WebClient(*clientID, *clientSecret, redirectURIs...))

	var users storage.UserStore
	if *usersFile != "" {
		if users, err = storage.StoreFromFile(*usersFile); err != nil {
			return err
		}
	} else {
		// NewUserStore names the first user test-user@HOST after the host of
		// the URL it is given; a fixed "localhost" keeps the login name
		// stable whatever address we listen on.
		users = storage.NewUserStore("http://localhost:0/")
	}

	// SetupServer already passes op.WithAllowInsecure(), which is what lets
	// the issuer be http:// rather than https://. It also enables PKCE
	// (S256 and plain), refresh tokens and client_secret_post, and serves
	// the authorization endpoint at /auth rather than /authorize.
	router := exampleop.SetupServer(issuer, storage.NewStorage(users), logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *watchStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			logger.Info("stdin closed, stopping")
			stop()
		}()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The one line a test reads; printed once the listener accepts.
	fmt.Printf("ISSUER %s\n", issuer)
	logger.Info("listening", "issuer", issuer, "client_id", *clientID, "redirect_uris", []string(redirectURIs))

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	return nil
}
