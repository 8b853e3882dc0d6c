package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/remotemcp/remotemcp/authz/token"
)

// signingKeyCommand is `remotemcp signing-key [--rotate FILE]`: it prints a
// new access-token signing key ring for --signing-key-file, or FILE's ring
// rotated to a new key with the old one kept (public half only) until the
// tokens it signed have expired.
func signingKeyCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("remotemcp signing-key", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // main prints a parse error on one line; only --help prints the usage
	rotate := fs.String("rotate", "", "existing key ring to rotate (the new ring is printed; the file is not changed)")
	lifetime := fs.Duration("access-token-lifetime", 10*time.Minute, "the servers' --access-token-lifetime: how long the retired key stays published")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprintf(stderr, "Usage: remotemcp signing-key [--rotate FILE] > signing.json\n\nPrints an ES256 key ring for --signing-key-file.\n\nFlags:\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return errHelp
		}
		return &usageError{command: "remotemcp signing-key", err: err}
	}
	if fs.NArg() > 0 {
		return &usageError{command: "remotemcp signing-key", err: fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	key, err := token.GenerateKey()
	if err != nil {
		return err
	}
	var ring *token.KeyRing
	if *rotate != "" {
		b, err := os.ReadFile(*rotate)
		if err != nil {
			return fmt.Errorf("--rotate: %v", err)
		}
		if ring, err = token.UnmarshalKeyRing(b); err != nil {
			return fmt.Errorf("--rotate %s: %v", *rotate, err)
		}
		if err := ring.Rotate(key, *lifetime, time.Now()); err != nil {
			return err
		}
	} else if ring, err = token.NewKeyRing(key); err != nil {
		return err
	}
	out, err := token.MarshalKeyRing(ring)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
