package mcpserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testKey = bytes.Repeat([]byte("k"), 32)

// newTestSealer returns a sealer with a settable clock.
func newTestSealer(t testing.TB, ttl time.Duration) (*StateSealer, *time.Time) {
	t.Helper()
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	s := NewStateSealer(testKey, ttl)
	s.now = func() time.Time { return now }
	return s, &now
}

func TestStateSealerRoundTrip(t *testing.T) {
	s, _ := newTestSealer(t, 0)
	for _, tt := range []struct {
		name    string
		payload []byte
	}{
		{"empty", []byte{}},
		{"json", []byte(`{"step":2,"answers":["a"]}`)},
		{"binary", []byte{0, 1, 2, 0xff, '.', 0}},
		{"large", bytes.Repeat([]byte("x"), 32<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := s.Seal("alice", "tool:draft_note", tt.payload)
			if strings.Count(state, ".") != 1 {
				t.Errorf("Seal = %q, want body.mac", state)
			}
			got, err := s.Open("alice", "tool:draft_note", state)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := cmp.Diff(tt.payload, got); diff != "" {
				t.Errorf("Open payload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStateSealerRejects(t *testing.T) {
	s, _ := newTestSealer(t, 0)
	state := s.Seal("alice", "tool:a", []byte(`{"n":1}`))
	other := s.Seal("alice", "tool:a", []byte(`{"n":2}`))
	body, mac, _ := strings.Cut(state, ".")
	otherBody, otherMAC, _ := strings.Cut(other, ".")

	rawBody, _ := base64.RawURLEncoding.DecodeString(body)
	flip := func(b []byte, i int) string {
		b = bytes.Clone(b)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	rawMAC, _ := base64.RawURLEncoding.DecodeString(mac)

	otherKey := NewStateSealer(bytes.Repeat([]byte("j"), 32), 0)
	otherKey.now = s.now

	for _, tt := range []struct {
		name             string
		subject, purpose string
		state            string
	}{
		{"wrong subject", "bob", "tool:a", state},
		{"wrong purpose", "alice", "tool:b", state},
		{"subject and purpose swapped", "tool:a", "alice", state},
		{"empty subject", "", "tool:a", state},
		{"other key", "alice", "tool:a", otherKey.Seal("alice", "tool:a", []byte(`{"n":1}`))},
		{"tampered version", "alice", "tool:a", flip(rawBody, 0) + "." + mac},
		{"tampered expiry", "alice", "tool:a", flip(rawBody, 8) + "." + mac},
		{"tampered payload", "alice", "tool:a", flip(rawBody, len(rawBody)-1) + "." + mac},
		{"tampered mac", "alice", "tool:a", body + "." + flip(rawMAC, 0)},
		{"truncated mac", "alice", "tool:a", body + "." + base64.RawURLEncoding.EncodeToString(rawMAC[:16])},
		{"empty mac", "alice", "tool:a", body + "."},
		{"mac of another state", "alice", "tool:a", body + "." + otherMAC},
		{"body of another state", "alice", "tool:a", otherBody + "." + mac},
		{"no separator", "alice", "tool:a", body + mac},
		{"empty", "alice", "tool:a", ""},
		{"dot only", "alice", "tool:a", "."},
		{"padded base64", "alice", "tool:a", body + "=." + mac},
		{"std base64 alphabet", "alice", "tool:a", strings.NewReplacer("-", "+", "_", "/").Replace(state) + "+"},
		{"short body", "alice", "tool:a", base64.RawURLEncoding.EncodeToString(rawBody[:8]) + "." + mac},
		{"trailing garbage", "alice", "tool:a", state + ".x"},
		{"too long", "alice", "tool:a", state + strings.Repeat("A", 64<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(tt.subject, tt.purpose, tt.state)
			if !errors.Is(err, ErrBadState) {
				t.Errorf("Open = %q, %v; want ErrBadState", got, err)
			}
		})
	}
}

func TestStateSealerExpiry(t *testing.T) {
	const ttl = 5 * time.Minute
	for _, tt := range []struct {
		name    string
		advance time.Duration
		ok      bool
	}{
		{"fresh", 0, true},
		{"just before", ttl - time.Second, true},
		{"at expiry", ttl, true},
		{"just after", ttl + time.Second, false},
		{"long after", 24 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, now := newTestSealer(t, ttl)
			state := s.Seal("alice", "tool:a", []byte("p"))
			*now = now.Add(tt.advance)
			_, err := s.Open("alice", "tool:a", state)
			if tt.ok && err != nil {
				t.Errorf("Open after %v: %v", tt.advance, err)
			}
			if !tt.ok && !errors.Is(err, ErrBadState) {
				t.Errorf("Open after %v error = %v, want ErrBadState", tt.advance, err)
			}
		})
	}
}

func TestStateSealerDefaultTTL(t *testing.T) {
	s, now := newTestSealer(t, 0)
	state := s.Seal("alice", "tool:a", nil)
	*now = now.Add(10 * time.Minute)
	if _, err := s.Open("alice", "tool:a", state); err != nil {
		t.Errorf("Open at the default TTL: %v", err)
	}
	*now = now.Add(time.Second)
	if _, err := s.Open("alice", "tool:a", state); !errors.Is(err, ErrBadState) {
		t.Errorf("Open after the default TTL error = %v, want ErrBadState", err)
	}
}

func TestStateSealerSharedKey(t *testing.T) {
	// Replicas that share the key verify each other's states.
	a, _ := newTestSealer(t, 0)
	b, _ := newTestSealer(t, 0)
	got, err := b.Open("alice", "tool:a", a.Seal("alice", "tool:a", []byte("p")))
	if err != nil {
		t.Fatalf("Open on another replica: %v", err)
	}
	if string(got) != "p" {
		t.Errorf("Open = %q, want p", got)
	}
}

func TestStateSealerCopiesKey(t *testing.T) {
	key := bytes.Clone(testKey)
	s := NewStateSealer(key, 0)
	state := s.Seal("alice", "tool:a", []byte("p"))
	key[0] ^= 1
	if _, err := s.Open("alice", "tool:a", state); err != nil {
		t.Errorf("Open after the caller changed its key slice: %v", err)
	}
}

func TestStateSealerSubjectPurposeBoundary(t *testing.T) {
	s, _ := newTestSealer(t, 0)
	state := s.Seal("a", "b\x00c", []byte("p"))
	if _, err := s.Open("a\x00b", "c", state); !errors.Is(err, ErrBadState) {
		t.Errorf("Open with another subject/purpose split error = %v, want ErrBadState", err)
	}
}

func TestNewStateSealerShortKey(t *testing.T) {
	for _, tt := range []struct {
		name   string
		key    []byte
		panics bool
	}{
		{"nil", nil, true},
		{"31 bytes", bytes.Repeat([]byte("k"), 31), true},
		{"32 bytes", bytes.Repeat([]byte("k"), 32), false},
		{"64 bytes", bytes.Repeat([]byte("k"), 64), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var msg any
			func() {
				defer func() { msg = recover() }()
				NewStateSealer(tt.key, 0)
			}()
			if got := msg != nil; got != tt.panics {
				t.Fatalf("NewStateSealer(%d-byte key) panicked = %v (%v), want %v", len(tt.key), got, msg, tt.panics)
			}
			if s, ok := msg.(string); tt.panics && (!ok || !strings.HasPrefix(s, "mcpserver: ")) {
				t.Errorf("panic value = %#v, want a string prefixed \"mcpserver: \"", msg)
			}
		})
	}
}

// FuzzStateSealerOpen checks that Open never panics and accepts nothing but
// the states Seal produced, for the subject and purpose they were sealed
// for. base64 decoding tolerates some non-canonical spellings (newlines,
// unused trailing bits), so a state is identified by its decoded bytes.
func FuzzStateSealerOpen(f *testing.F) {
	s, _ := newTestSealer(f, 0)
	payloads := []string{"", "p", `{"step":2}`, "\x00\xff"}
	sealed := map[string]string{} // canonical state → payload
	for _, p := range payloads {
		state := s.Seal("alice", "tool:a", []byte(p))
		sealed[state] = p
		f.Add("alice", "tool:a", state)
		f.Add("bob", "tool:a", state)
		f.Add("alice", "tool:b", state)
		body, mac, _ := strings.Cut(state, ".")
		f.Add("alice", "tool:a", body+"."+mac[:len(mac)-1]+"A")
		f.Add("alice", "tool:a", "A"+state[1:])
	}
	f.Add("alice", "tool:a", "")
	f.Add("alice", "tool:a", ".")
	f.Add("", "", "AQ.AQ")

	canonical := func(state string) (string, bool) {
		body, mac, ok := strings.Cut(state, ".")
		b, err1 := base64.RawURLEncoding.DecodeString(body)
		m, err2 := base64.RawURLEncoding.DecodeString(mac)
		if !ok || err1 != nil || err2 != nil {
			return "", false
		}
		return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(m), true
	}

	f.Fuzz(func(t *testing.T, subject, purpose, state string) {
		got, err := s.Open(subject, purpose, state)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("Open error = %v, want ErrBadState", err)
			}
			return
		}
		if subject != "alice" || purpose != "tool:a" {
			t.Fatalf("Open(%q, %q) accepted a state sealed for (alice, tool:a)", subject, purpose)
		}
		c, ok := canonical(state)
		want, sealedByUs := sealed[c]
		if !ok || !sealedByUs {
			t.Fatalf("Open accepted %q, which Seal never produced", state)
		}
		if string(got) != want {
			t.Fatalf("Open = %q, want %q", got, want)
		}
	})
}
