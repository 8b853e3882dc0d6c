package as

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/remotemcp/remotemcp/authz"
)

// RegistrationResponse is the body of a successful registration ([RFC 7591
// §3.2.1]): the client's metadata as we registered it, with its id and,
// for a confidential client, its secret.
//
// [RFC 7591 §3.2.1]: https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
type RegistrationResponse struct {
	ClientMetadata
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
}

// errRegistrationsFull answers a registration past the store's bound on
// clients: an RFC 7591 §3.2.2 error body, with 503 and
// temporarily_unavailable, since unused registrations expire and free
// room; clients must not read it as a fault of their metadata.
var errRegistrationsFull = &authz.Error{Code: authz.TemporarilyUnavailable, Status: http.StatusServiceUnavailable,
	Description: "this server holds as many client registrations as it accepts; try again later"}

// Register registers a client from its metadata, already parsed. A
// confidential client (client_secret_basic or client_secret_post) gets a
// secret, of which only the hash is kept.
func (s *Server) Register(r *http.Request, md *ClientMetadata) (*RegistrationResponse, error) {
	id, err := s.newID(16)
	if err != nil {
		return nil, err
	}
	c := &Client{ClientID: id, Metadata: *md, IssuedAt: s.o.Now().Truncate(time.Second)}
	c.Metadata.ClientID = id
	resp := &RegistrationResponse{ClientMetadata: c.Metadata, ClientIDIssuedAt: c.IssuedAt.Unix()}
	if md.TokenEndpointAuthMethod != authMethodNone {
		secret, hash, err := newOpaqueToken(s.o.Rand)
		if err != nil {
			return nil, err
		}
		c.SecretHash = hash
		resp.ClientSecret = secret
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	// NewClientTTL until the first token, which extends it to ClientTTL.
	if err := s.st.Clients.CreateClient(r.Context(), c, s.o.NewClientTTL); err != nil {
		if errors.Is(err, ErrTooManyClients) {
			return nil, errRegistrationsFull
		}
		return nil, err
	}
	s.event(Event{Kind: EventRegistration, Outcome: OutcomeOK})
	return resp, nil
}

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if s.addressLimited(w, r, limitRegister) {
		return
	}
	if !jsonContent(r) {
		authz.WriteError(w, authz.ErrInvalidClientMetadata("the registration request must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxClientMetadataBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			authz.WriteError(w, authz.ErrInvalidClientMetadata("the registration request is too large"))
			return
		}
		authz.WriteError(w, authz.ErrInvalidRequest("the request body could not be read"))
		return
	}
	md, err := parseClientMetadata(body)
	if err != nil {
		authz.WriteError(w, err)
		return
	}
	resp, err := s.Register(r, md)
	if err == errRegistrationsFull {
		s.event(Event{Kind: EventRegistration, Outcome: OutcomeRefused})
		s.log.WarnContext(r.Context(), "authz: registration refused: the client store is full")
		w.Header().Set("Retry-After", "3600")
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
		authz.WriteError(w, err)
		return
	}
	if err != nil {
		s.logErr(r, "register", err)
		authz.WriteError(w, err)
		return
	}
	out, err := json.Marshal(resp)
	if err != nil {
		authz.WriteError(w, err)
		return
	}
	s.log.InfoContext(r.Context(), "authz: client registered", "client_id", resp.ClientID, "client_name", resp.ClientName, "application_type", resp.ApplicationType)
	writeJSON(w, http.StatusCreated, out)
}

// jsonContent reports whether the request body is declared as JSON.
func jsonContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
