package as

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/remotemcp/remotemcp/authz"
)

// maxClientMetadataBytes bounds a registration request body or a client
// metadata document; the HTTP handler should cut the body at this size
// with http.MaxBytesReader.
const maxClientMetadataBytes = 16 << 10

// Caps on the metadata fields, so that what a registration (anyone may
// send one) makes us store stays small: at most maxStoredMetadataBytes,
// against the 16 KiB a body may hold. Real clients' values are far below
// them (a typical registration stores about 500 bytes).
const (
	maxRedirectURIs    = 10
	maxClientNameRunes = 200
	// maxURIBytes bounds each redirect URI and informational URL.
	maxURIBytes = 512
	// maxScopeBytes bounds scope.
	maxScopeBytes = 1024
	// maxContacts and maxContactBytes bound contacts.
	maxContacts     = 5
	maxContactBytes = 254
	// maxSoftwareBytes bounds software_id and software_version.
	maxSoftwareBytes = 128
	// maxStoredMetadataBytes bounds the metadata as stored (JSON).
	maxStoredMetadataBytes = 12 << 10
)

// Values of client metadata that this server supports.
const (
	authMethodNone              = "none"
	authMethodClientSecretBasic = "client_secret_basic"
	authMethodClientSecretPost  = "client_secret_post"
	grantAuthorizationCode      = "authorization_code"
	grantRefreshToken           = "refresh_token"
	responseTypeCode            = "code"
)

// ClientMetadata is the metadata of an OAuth client: the body of an RFC 7591
// §2 registration request, and of a Client ID Metadata Document (CIMD). JSON
// names are those of RFC 7591 §2. parseClientMetadata fills the defaults,
// so a parsed value always has TokenEndpointAuthMethod, GrantTypes,
// ResponseTypes and ApplicationType set.
//
// [RFC 7591 §2]: https://www.rfc-editor.org/rfc/rfc7591#section-2
type ClientMetadata struct {
	// RedirectURIs is the JSON "redirect_uris". REQUIRED, 1-10 entries,
	// each valid for validateRedirectURI.
	RedirectURIs []string `json:"redirect_uris"`
	// TokenEndpointAuthMethod is the JSON "token_endpoint_auth_method":
	// none (the default), client_secret_basic or client_secret_post.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// GrantTypes is the JSON "grant_types": authorization_code (the
	// default) and optionally refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`
	// ResponseTypes is the JSON "response_types": code (the default).
	ResponseTypes []string `json:"response_types,omitempty"`
	// ClientName is the JSON "client_name", at most 200 characters.
	// OPTIONAL for DCR (the consent page then shows the redirect host),
	// REQUIRED in a metadata document.
	ClientName string `json:"client_name,omitempty"`
	// ClientURI is the JSON "client_uri", an https URL. OPTIONAL.
	ClientURI string `json:"client_uri,omitempty"`
	// LogoURI is the JSON "logo_uri", an https URL. OPTIONAL.
	LogoURI string `json:"logo_uri,omitempty"`
	// Scope is the JSON "scope": space-separated scope tokens, normalized
	// to single spaces without duplicates. OPTIONAL.
	Scope string `json:"scope,omitempty"`
	// Contacts is the JSON "contacts". OPTIONAL.
	Contacts []string `json:"contacts,omitempty"`
	// TOSURI is the JSON "tos_uri", an https URL. OPTIONAL.
	TOSURI string `json:"tos_uri,omitempty"`
	// PolicyURI is the JSON "policy_uri", an https URL. OPTIONAL.
	PolicyURI string `json:"policy_uri,omitempty"`
	// SoftwareID is the JSON "software_id". OPTIONAL.
	SoftwareID string `json:"software_id,omitempty"`
	// SoftwareVersion is the JSON "software_version". OPTIONAL.
	SoftwareVersion string `json:"software_version,omitempty"`
	// ApplicationType is the JSON "application_type" (OIDC Dynamic Client
	// Registration §2, MCP 2026-07-28): native or web. Defaults to native
	// when every redirect URI is on a loopback host or uses a private-use
	// scheme, else web.
	ApplicationType string `json:"application_type,omitempty"`
	// ClientID is the JSON "client_id". In a metadata document it is the
	// document's own URL, REQUIRED; in a registration request it means
	// nothing and the server assigns its own.
	ClientID string `json:"client_id,omitempty"`
}

// parseClientMetadata parses and validates client metadata, from a
// registration request or a metadata document, and fills the defaults. It
// returns an *Error: invalid_redirect_uri for a problem with redirect_uris,
// invalid_client_metadata for anything else, with a description naming the
// field.
//
// The body must be one JSON object of at most maxClientMetadataBytes. Field
// names match exactly (encoding/json's case-insensitive matching is not
// used), a known field may appear only once, unknown fields are ignored,
// and null is the same as absent. Rules: see the ClientMetadata fields;
// duplicates in redirect_uris, grant_types and response_types are dropped;
// grant_types holds authorization_code if and only if response_types holds
// code; client_name has no control or bidi-control characters; client_uri,
// logo_uri, tos_uri and policy_uri are absolute https URLs without userinfo
// (empty means absent); each scope token uses the RFC 6749 §3.3 charset.
func parseClientMetadata(body []byte) (*ClientMetadata, error) {
	if len(body) > maxClientMetadataBytes {
		return nil, authz.ErrInvalidClientMetadata("client metadata is larger than " + strconv.Itoa(maxClientMetadataBytes) + " bytes")
	}
	m := new(ClientMetadata)
	if err := decodeClientMetadata(body, m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// clientMetadataField is a known field: where it goes and what it must be.
type clientMetadataField struct {
	dst  any
	want string
}

// decodeClientMetadata decodes the known fields of one JSON object into m.
func decodeClientMetadata(body []byte, m *ClientMetadata) error {
	const str, strs = "a string", "an array of strings"
	fields := map[string]clientMetadataField{
		"redirect_uris":              {&m.RedirectURIs, strs},
		"token_endpoint_auth_method": {&m.TokenEndpointAuthMethod, str},
		"grant_types":                {&m.GrantTypes, strs},
		"response_types":             {&m.ResponseTypes, strs},
		"client_name":                {&m.ClientName, str},
		"client_uri":                 {&m.ClientURI, str},
		"logo_uri":                   {&m.LogoURI, str},
		"scope":                      {&m.Scope, str},
		"contacts":                   {&m.Contacts, strs},
		"tos_uri":                    {&m.TOSURI, str},
		"policy_uri":                 {&m.PolicyURI, str},
		"software_id":                {&m.SoftwareID, str},
		"software_version":           {&m.SoftwareVersion, str},
		"application_type":           {&m.ApplicationType, str},
		"client_id":                  {&m.ClientID, str},
	}
	notJSON := authz.ErrInvalidClientMetadata("client metadata is not valid JSON")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return authz.ErrInvalidClientMetadata("client metadata must be a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return notJSON
		}
		key, ok := tok.(string)
		if !ok {
			return notJSON
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return notJSON
		}
		f, known := fields[key]
		if !known {
			continue // RFC 7591 §2: ignore what we do not understand
		}
		if seen[key] {
			return authz.ErrInvalidClientMetadata(key + " appears more than once")
		}
		seen[key] = true
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return authz.ErrInvalidClientMetadata(key + " must be " + f.want)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return notJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return authz.ErrInvalidClientMetadata("client metadata has data after the JSON object")
	}
	return nil
}

// validate checks m and fills its defaults.
func (m *ClientMetadata) validate() error {
	switch m.ApplicationType {
	case "", ApplicationTypeNative, ApplicationTypeWeb:
	default:
		return authz.ErrInvalidClientMetadata("application_type must be native or web")
	}
	if err := m.validateRedirectURIs(); err != nil {
		return err
	}

	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = authMethodNone
	case authMethodNone, authMethodClientSecretBasic, authMethodClientSecretPost:
	default:
		return authz.ErrInvalidClientMetadata("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}

	m.GrantTypes = dedupe(m.GrantTypes)
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range m.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			return authz.ErrInvalidClientMetadata("grant_types may only hold authorization_code and refresh_token, not " + showURI(g))
		}
	}
	m.ResponseTypes = dedupe(m.ResponseTypes)
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{responseTypeCode}
	}
	for _, r := range m.ResponseTypes {
		if r != responseTypeCode {
			return authz.ErrInvalidClientMetadata("response_types may only hold code, not " + showURI(r))
		}
	}
	// RFC 7591 §2.1: the code grant and the code response type go together.
	if slices.Contains(m.GrantTypes, grantAuthorizationCode) != slices.Contains(m.ResponseTypes, responseTypeCode) {
		return authz.ErrInvalidClientMetadata("grant_types must hold authorization_code exactly when response_types holds code")
	}

	if err := m.checkSizes(); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(m.ClientName); n > maxClientNameRunes {
		return authz.ErrInvalidClientMetadata("client_name must be at most " + strconv.Itoa(maxClientNameRunes) + " characters")
	}
	for _, r := range m.ClientName {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return authz.ErrInvalidClientMetadata("client_name must not contain control characters")
		}
	}

	for _, f := range []struct {
		name string
		v    string
	}{{"client_uri", m.ClientURI}, {"logo_uri", m.LogoURI}, {"tos_uri", m.TOSURI}, {"policy_uri", m.PolicyURI}} {
		if f.v == "" {
			continue
		}
		if reason := checkHTTPSURL(f.v); reason != "" {
			return authz.ErrInvalidClientMetadata(f.name + " " + showURI(f.v) + ": " + reason)
		}
	}

	scope, err := normalizeScope(m.Scope)
	if err != nil {
		return err
	}
	m.Scope = scope
	// The record as stored: JSON escapes some characters (& < > as six
	// bytes each), so the field caps alone would not bound it.
	if b, err := json.Marshal(m); err != nil || len(b) > maxStoredMetadataBytes {
		return authz.ErrInvalidClientMetadata("client metadata is larger than " + strconv.Itoa(maxStoredMetadataBytes) + " bytes once stored")
	}
	return nil
}

// checkSizes checks the size caps of the fields other than client_name and
// redirect_uris.
func (m *ClientMetadata) checkSizes() error {
	too := func(field string, limit int) error {
		return authz.ErrInvalidClientMetadata(field + " must be at most " + strconv.Itoa(limit) + " bytes")
	}
	for _, f := range []struct {
		name string
		v    string
	}{{"client_uri", m.ClientURI}, {"logo_uri", m.LogoURI}, {"tos_uri", m.TOSURI}, {"policy_uri", m.PolicyURI}} {
		if len(f.v) > maxURIBytes {
			return too(f.name, maxURIBytes)
		}
	}
	switch {
	case len(m.Scope) > maxScopeBytes:
		return too("scope", maxScopeBytes)
	case len(m.SoftwareID) > maxSoftwareBytes:
		return too("software_id", maxSoftwareBytes)
	case len(m.SoftwareVersion) > maxSoftwareBytes:
		return too("software_version", maxSoftwareBytes)
	case len(m.Contacts) > maxContacts:
		return authz.ErrInvalidClientMetadata("contacts may hold at most " + strconv.Itoa(maxContacts) + " entries")
	}
	for _, c := range m.Contacts {
		if len(c) > maxContactBytes {
			return too("each of contacts", maxContactBytes)
		}
	}
	return nil
}

// validateRedirectURIs checks redirect_uris and defaults application_type.
func (m *ClientMetadata) validateRedirectURIs() error {
	m.RedirectURIs = dedupe(m.RedirectURIs)
	switch {
	case len(m.RedirectURIs) == 0:
		return authz.ErrInvalidRedirectURI("redirect_uris is required")
	case len(m.RedirectURIs) > maxRedirectURIs:
		return authz.ErrInvalidRedirectURI("redirect_uris may hold at most " + strconv.Itoa(maxRedirectURIs) + " URIs")
	}
	// Check each URI against the declared type, or against either type when
	// none is declared; then default the type and check again.
	native := true
	for _, u := range m.RedirectURIs {
		if len(u) > maxURIBytes {
			return authz.ErrInvalidRedirectURI("each redirect_uri must be at most " + strconv.Itoa(maxURIBytes) + " bytes")
		}
		info, reason := checkRedirectURI(u, m.ApplicationType)
		if reason != "" {
			return authz.ErrInvalidRedirectURI("redirect_uri " + showURI(u) + ": " + reason)
		}
		native = native && info.native()
	}
	if m.ApplicationType != "" {
		return nil
	}
	m.ApplicationType = ApplicationTypeWeb
	if native {
		m.ApplicationType = ApplicationTypeNative
	}
	for _, u := range m.RedirectURIs {
		if _, reason := checkRedirectURI(u, m.ApplicationType); reason != "" {
			return authz.ErrInvalidRedirectURI("redirect_uri " + showURI(u) + ": " + reason +
				" (application_type defaulted to web because other redirect URIs are neither loopback nor private-use; declare application_type native)")
		}
	}
	return nil
}

// checkHTTPSURL checks an informational URL (client_uri, logo_uri, ...):
// an absolute https URL with a host and no userinfo. Unlike a redirect URI
// it may have a fragment.
func checkHTTPSURL(raw string) string {
	if reason := checkURIText(raw); reason != "" {
		return reason
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a valid URL"
	}
	if u.Scheme != "https" || u.Opaque != "" || u.Host == "" {
		return "must be an https URL"
	}
	if u.User != nil {
		return "must not contain userinfo"
	}
	return checkAuthority(u)
}

// normalizeScope checks an RFC 6749 §3.3 scope string (scope-tokens
// separated by spaces) and returns it with single spaces and without
// duplicates.
func normalizeScope(s string) (string, error) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" || slices.Contains(out, tok) {
			continue
		}
		for i := 0; i < len(tok); i++ {
			if !scopeChar(tok[i]) {
				return "", authz.ErrInvalidClientMetadata("scope has an invalid scope token " + showURI(tok))
			}
		}
		out = append(out, tok)
	}
	return strings.Join(out, " "), nil
}

// scopeChar reports a character allowed in a scope-token: %x21 / %x23-5B /
// %x5D-7E.
func scopeChar(c byte) bool {
	return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\'
}

// dedupe drops repeated strings, keeping the first of each.
func dedupe(in []string) []string {
	if len(in) == 0 {
		return in
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// validateMetadataDocument checks a Client ID Metadata Document, already
// parsed with parseClientMetadata, fetched from documentURL (the client_id
// of the authorization request). It returns an *Error
// invalid_client_metadata (invalid_redirect_uri for a redirect URI) which
// the authorization endpoint shows to the user, never to a redirect URI.
//
// documentURL must be an https URL with a host and a path other than "/",
// without userinfo, fragment, or "." or ".." path segments; the document's
// client_id must equal it byte for byte; client_name and redirect_uris are
// required; token_endpoint_auth_method must be none (a document cannot
// hold a shared secret, and private_key_jwt is not supported yet).
func validateMetadataDocument(doc *ClientMetadata, documentURL string) error {
	if reason := checkDocumentURL(documentURL); reason != "" {
		return authz.ErrInvalidClientMetadata("client_id " + showURI(documentURL) + ": " + reason)
	}
	if doc == nil {
		return authz.ErrInvalidClientMetadata("the client metadata document is empty")
	}
	if doc.ClientID != documentURL {
		return authz.ErrInvalidClientMetadata("the document's client_id must equal its URL " + showURI(documentURL))
	}
	if strings.TrimSpace(doc.ClientName) == "" {
		return authz.ErrInvalidClientMetadata("client_name is required in a client metadata document")
	}
	if len(doc.RedirectURIs) == 0 {
		return authz.ErrInvalidRedirectURI("redirect_uris is required")
	}
	for _, u := range doc.RedirectURIs {
		if err := validateRedirectURI(u, doc.ApplicationType); err != nil {
			return err
		}
	}
	switch doc.TokenEndpointAuthMethod {
	case "", authMethodNone:
		return nil
	case "private_key_jwt":
		return authz.ErrInvalidClientMetadata("token_endpoint_auth_method private_key_jwt is not supported; use none")
	default:
		return authz.ErrInvalidClientMetadata("token_endpoint_auth_method must be none in a client metadata document")
	}
}

// checkDocumentURL checks the URL of a client metadata document.
func checkDocumentURL(raw string) string {
	if reason := checkHTTPSURL(raw); reason != "" {
		return reason
	}
	if strings.ContainsRune(raw, '#') {
		return "must not contain a fragment"
	}
	u, _ := url.Parse(raw) // checkHTTPSURL parsed it
	if u.Path == "" || u.Path == "/" {
		return "must have a path"
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "must not contain . or .. path segments"
		}
	}
	return ""
}
