package upstream

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestVaultRefreshedHook: VaultOptions.Refreshed hears each refresh of an
// upstream token with its outcome, and nothing else.
func TestVaultRefreshedHook(t *testing.T) {
	for _, tt := range []struct {
		name  string
		token http.HandlerFunc
		want  string
	}{
		{"ok", issue(true), "ok"},
		{"refused", answer(400, "application/json", `{"error":"invalid_grant"}`), "refused"},
		{"failed", answer(503, "text/plain", "try later"), "failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			fx := newVaultFixture(t, tt.token, &VaultOptions{Refreshed: func(outcome string) {
				mu.Lock()
				got = append(got, outcome)
				mu.Unlock()
			}})
			fx.put(t, "fresh", time.Hour, oldRefresh)
			fx.vault.Token(t.Context(), "fresh") // no refresh: not told
			fx.put(t, "g1", -time.Second, oldRefresh)
			fx.vault.Token(t.Context(), "g1")
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("Refreshed heard %q; want [%s]", got, tt.want)
			}
		})
	}
}
