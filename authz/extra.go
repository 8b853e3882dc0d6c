package authz

// Keys of the go-sdk's auth.TokenInfo.Extra that the token verifiers fill
// and the per-item policy reads (package policy's CallerOf). A verifier
// sets a key only when it knows the value; a reader treats a missing or
// mistyped value as absent.
const (
	// ExtraClientID is the OAuth client the token was issued to: a string.
	ExtraClientID = "client_id"
	// ExtraEmail is the subject's e-mail address, a string, set only when
	// the issuer vouches that the address is verified: an unverified
	// address is never put here, so a rule on it cannot be met by a user
	// who merely typed someone else's address.
	ExtraEmail = "email"
	// ExtraGroups are the groups (or roles) of the subject: a []string, or
	// a []any of strings as decoded from JSON.
	ExtraGroups = "groups"
)
