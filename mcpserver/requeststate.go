package mcpserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// ErrBadState is returned for a requestState that was tampered with, expired,
// or minted for another principal or purpose.
var ErrBadState = errors.New("mcpserver: invalid requestState")

// A StateSealer mints and verifies MRTR requestState values (2026-07-28,
// SEP-2322). The client holds the state between rounds, so it is treated as
// attacker-controlled: each value is HMAC-SHA256 protected, bound to the
// principal and to a purpose (the tool or prompt), and expires. Replicas that
// share the key verify each other's states.
type StateSealer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewStateSealer returns a sealer keyed with key (at least 32 bytes) whose
// states live for ttl (default 10 minutes).
func NewStateSealer(key []byte, ttl time.Duration) *StateSealer {
	if len(key) < 32 {
		panic("mcpserver: requestState key shorter than 32 bytes")
	}
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	return &StateSealer{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}
}

const stateVersion = 1

// Seal returns an opaque requestState carrying payload for subject and purpose.
func (s *StateSealer) Seal(subject, purpose string, payload []byte) string {
	body := make([]byte, 9, 9+len(payload))
	body[0] = stateVersion
	binary.BigEndian.PutUint64(body[1:9], uint64(s.now().Add(s.ttl).Unix()))
	body = append(body, payload...)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(s.mac(subject, purpose, body))
}

// Open verifies state and returns its payload.
func (s *StateSealer) Open(subject, purpose, state string) ([]byte, error) {
	if len(state) > 64<<10 {
		return nil, ErrBadState
	}
	b64body, b64mac, ok := strings.Cut(state, ".")
	if !ok {
		return nil, ErrBadState
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	mac, err2 := base64.RawURLEncoding.DecodeString(b64mac)
	if err1 != nil || err2 != nil || len(body) < 9 || body[0] != stateVersion {
		return nil, ErrBadState
	}
	if !hmac.Equal(mac, s.mac(subject, purpose, body)) {
		return nil, ErrBadState
	}
	if s.now().Unix() > int64(binary.BigEndian.Uint64(body[1:9])) {
		return nil, ErrBadState
	}
	return body[9:], nil
}

func (s *StateSealer) mac(subject, purpose string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("remotemcp/requestState\x00"))
	// Length-prefixed, so no (subject, purpose) pair can pose as another.
	var n [8]byte
	for _, field := range []string{subject, purpose} {
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		m.Write(n[:])
		m.Write([]byte(field))
	}
	m.Write(body)
	return m.Sum(nil)
}
