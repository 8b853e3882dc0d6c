package as

import (
	"context"
	"errors"
	"time"

	"github.com/remotemcp/remotemcp/authz/upstream"
)

// Store errors. Implementations return these (wrapped or not) and never
// their backend's own "missing" values.
var (
	// ErrAlreadyUsed: an authorization code was taken before. TakeCode
	// returns it together with the record, so that the caller can revoke
	// what the first use issued. TakePending never returns it: a pending
	// authorization that was taken is ErrNotFound.
	ErrAlreadyUsed = errors.New("authz: already used")
	// ErrTooManyClients: CreateClient refused a new client because the
	// store holds as many live clients as it was configured to accept.
	// Existing clients are unaffected; a slot frees when one expires.
	ErrTooManyClients = errors.New("authz: too many registered clients")
)

// A Client is a registered OAuth client: registered through RFC 7591
// dynamic registration (its ClientID is random), or known through its
// Client ID Metadata Document (its ClientID is the document's URL; such
// clients are cached, not stored).
type Client struct {
	ClientID string `json:"client_id"`
	// SecretHash is hashToken of the client secret of a confidential
	// client; empty for a public client (token_endpoint_auth_method none).
	SecretHash string         `json:"secret_hash,omitempty"`
	Metadata   ClientMetadata `json:"metadata"`
	IssuedAt   time.Time      `json:"issued_at"`
}

// ClientStore holds dynamically registered clients. A registration that is
// never used expires; TouchClient extends it when the client is used. A
// store may bound the number of live clients: CreateClient then returns
// ErrTooManyClients for a new one past the bound, and GetClient and
// TouchClient keep working for the clients it holds.
type ClientStore interface {
	CreateClient(ctx context.Context, c *Client, ttl time.Duration) error
	GetClient(ctx context.Context, clientID string) (*Client, error)
	TouchClient(ctx context.Context, clientID string, ttl time.Duration) error
}

// A PendingAuth is an authorization request between /authorize and our
// callback from the upstream: what the client asked for, and, once the
// user approved it, the secrets of our own request to the upstream.
type PendingAuth struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	State         string    `json:"state,omitempty"` // the client's state, echoed back
	CodeChallenge string    `json:"code_challenge"`
	Resource      string    `json:"resource"`
	Scopes        []string  `json:"scopes"`
	CreatedAt     time.Time `json:"created_at"`
	// Approved is set when the user approved the client on the consent page
	// (or a remembered approval applied); only then are the upstream
	// state and verifier set.
	Approved bool `json:"approved,omitempty"`
	// AutoApprovedFor is the subject whose remembered approval applied,
	// if one did: the callback refuses an upstream login as anyone else.
	AutoApprovedFor string `json:"auto_approved_for,omitempty"`
	// UpstreamStateHash is hashToken of the secret part of the state we
	// sent upstream.
	UpstreamStateHash string `json:"upstream_state_hash,omitempty"`
	// UpstreamVerifier is our PKCE verifier towards the upstream, sealed
	// with the vault's key for this record's ID: with the upstream code,
	// it would redeem the sign-in, so the store never sees it in clear.
	UpstreamVerifier *upstream.Sealed `json:"upstream_verifier_sealed,omitempty"`
	// Browser is the hash of the browser binding nonce carried by the
	// signed transaction cookie: the callback must come from the browser
	// that approved.
	Browser string `json:"browser"`
}

// PendingAuthStore holds pending authorizations. TakePending is single-use
// and atomic: of two concurrent calls for one id, one gets the record and
// the other ErrNotFound.
type PendingAuthStore interface {
	PutPending(ctx context.Context, p *PendingAuth, ttl time.Duration) error
	GetPending(ctx context.Context, id string) (*PendingAuth, error)
	TakePending(ctx context.Context, id string) (*PendingAuth, error)
}

// An AuthCode is our authorization code, stored under hashToken of the code and
// bound to everything the token request must repeat.
type AuthCode struct {
	Hash          string    `json:"hash"`
	GrantID       string    `json:"grant_id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	CodeChallenge string    `json:"code_challenge"`
	Resource      string    `json:"resource"`
	Scopes        []string  `json:"scopes"`
	Subject       string    `json:"subject"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Email and Groups are the user's claims for the access token (see
	// Grant).
	Email  string   `json:"email,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// CodeStore holds authorization codes. TakeCode consumes a code atomically;
// a second take returns the record with ErrAlreadyUsed (the store keeps a
// tombstone until the code would have expired), so that the replay can
// revoke the grant the first use created.
type CodeStore interface {
	PutCode(ctx context.Context, c *AuthCode, ttl time.Duration) error
	TakeCode(ctx context.Context, hash string) (*AuthCode, error)
}

// A Grant is one user's authorization of one client: the family of every
// token issued from one authorization code. Revoking it revokes them all.
type Grant struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	Resource  string    `json:"resource"`
	CreatedAt time.Time `json:"created_at"`
	// Upstream names the upstream identity: provider and its user id,
	// for display; the upstream tokens are in the vault.
	Upstream string `json:"upstream,omitempty"`
	// Email (verified only) and Groups are what the upstream said of the
	// user at sign-in or at the last refresh that re-read the identity;
	// they go into the grant's access tokens (token.UserClaims), and are
	// kept bounded as those are (token.BoundGroups: 64 names, 2 KiB).
	Email  string   `json:"email,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// GrantStore holds grants. GrantRevoked is on the hot path of every MCP
// request (the access-token revocation check): implementations answer it
// from memory where they can. Revocation is sticky: after RevokeGrant,
// PutGrant, IssueRefresh and PutUpstream for that grant store nothing (a
// replayed code may revoke a grant while its first exchange is still
// issuing tokens), and GetGrant finds nothing.
type GrantStore interface {
	PutGrant(ctx context.Context, g *Grant, ttl time.Duration) error
	GetGrant(ctx context.Context, id string) (*Grant, error)
	RevokeGrant(ctx context.Context, id string) error
	GrantRevoked(ctx context.Context, id string) (bool, error)
}

// RotateResult says what RotateRefresh did with a presented refresh token.
type RotateResult int

const (
	// Rotated: the presented token was the family's current one; the new
	// token replaces it, and the presented one becomes the previous.
	Rotated RotateResult = iota + 1
	// RotatedInGrace: the presented token was the previous one, within
	// the grace window and by the same client (a retried refresh whose
	// answer was lost); the new token replaces the current one.
	RotatedInGrace
	// Reused: the presented token belongs to the family but is neither
	// current nor a previous one within grace: treat it as stolen. The
	// store has already marked the family dead; the caller revokes the grant.
	Reused
)

// A RefreshRotation asks RotateRefresh to replace a presented refresh token.
type RefreshRotation struct {
	PresentedHash string
	NewHash       string
	ClientID      string
	Now           time.Time
	Grace         time.Duration
	TTL           time.Duration
}

// RefreshStore holds refresh-token families, one per grant, by token hash.
// RotateRefresh does not check that the presented token belongs to the
// client: callers call LookupRefresh first and compare. A Grace of zero
// means no grace.
// RotateRefresh is atomic: of two concurrent rotations of the same current
// token, one gets Rotated and the other RotatedInGrace (or Reused past the
// grace window). It returns ErrNotFound for a token it does not know.
type RefreshStore interface {
	IssueRefresh(ctx context.Context, grantID, clientID, hash string, ttl time.Duration) error
	RotateRefresh(ctx context.Context, r RefreshRotation) (grantID string, res RotateResult, err error)
	LookupRefresh(ctx context.Context, hash string) (grantID, clientID string, err error)
}

// ConsentStore remembers a user's approval of a client with one redirect
// URI, server-side (never in a cookie that grows). An approval covers the
// scopes it lists.
type ConsentStore interface {
	Approve(ctx context.Context, subject, clientID, redirectURI string, scopes []string, ttl time.Duration) error
	Approved(ctx context.Context, subject, clientID, redirectURI string) (scopes []string, err error)
}
