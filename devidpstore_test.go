package remotemcp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// pkcePair is a PKCE verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestDevIdPRedisCodeOnce: on Redis, of concurrent redemptions of one
// code exactly one gets tokens, and the others revoke what it got (the
// access token no longer reads userinfo); the rotated refresh token
// cannot be used twice either.
func TestDevIdPRedisCodeOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ts := httptest.NewUnstartedServer(nil)
	iss := "http://" + ts.Listener.Addr().String() + "/dev-idp"
	const redirect = "http://127.0.0.1:9/cb"
	p, err := devidp.New(devidp.Options{Issuer: iss, ClientID: "c", ClientSecret: "s", RedirectURIs: []string{redirect}, Store: devIdPStore{rdb}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dev-idp/", p.Handler())
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {redirect}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"openid profile"}}
	resp, err := hc.Get(iss + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="request_id" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no login form: %d %s", resp.StatusCode, page)
	}
	resp, err = hc.PostForm(iss+"/authorize", url.Values{"request_id": {string(m[1])}, "username": {"alice"}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	token := func(form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, iss+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("c", "s")
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	const n = 8
	var wg sync.WaitGroup
	results := make(chan map[string]any, n)
	for range n {
		wg.Go(func() {
			if st, out := token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}}); st == http.StatusOK {
				results <- out
			}
		})
	}
	wg.Wait()
	close(results)
	var won []map[string]any
	for r := range results {
		won = append(won, r)
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent redemptions got tokens, want 1", len(won), n)
	}
	req, _ := http.NewRequest(http.MethodGet, iss+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+won[0]["access_token"].(string))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with the winner's token after the replays: %d, want 401 (the grant is revoked)", resp.StatusCode)
	}
	if st, _ := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {won[0]["refresh_token"].(string)}}); st != http.StatusBadRequest {
		t.Errorf("refresh with the revoked grant's token: %d, want 400", st)
	}
}
