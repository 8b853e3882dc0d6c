package main

import (
	"testing"
	"time"
)

// depsHint is how to get what a test found missing. The tests here use
// Debian's chromium and redis-server, the pinned Node tools of .ci/npm and
// the zitadel example OP's Go modules, but never install them: .ci/deps.sh
// does, and make test runs it before go test. A test that finds one missing
// fails rather than skips: CI counts a skipped test as failed anyway, and
// the message says what to run.
const depsHint = "run .ci/deps.sh (make test runs it before go test)"

// waitFor calls cond until it returns nil, and then returns nil; once
// timeout has passed, or the test's context is done, it returns cond's
// last error instead. It is for the end-to-end tests, which wait on real
// processes (a server getting ready, a load balancer seeing a replica, a
// counter reaching a value) where no clock can be injected: the test waits
// exactly as long as the condition takes, never a fixed guess. cond is
// called at once, then at intervals that grow from 5ms to 100ms.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) error {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	interval := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		next := time.NewTimer(interval)
		select {
		case <-next.C:
		case <-deadline.C:
			next.Stop()
			if err := cond(); err == nil {
				return nil
			}
			return err
		case <-t.Context().Done():
			next.Stop()
			return err
		}
		interval = min(2*interval, 100*time.Millisecond)
	}
}
