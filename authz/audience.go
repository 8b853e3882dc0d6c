package authz

import "strings"

// SameResource compares resource identifiers ([RFC 8707 §2]), tolerating
// a trailing slash: exact in what we issue, lenient in what we accept.
//
// [RFC 8707 §2]: https://www.rfc-editor.org/rfc/rfc8707#section-2
func SameResource(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}
