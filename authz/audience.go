package authz

import "strings"

// sameResource compares resource identifiers, tolerating a trailing slash.
func SameResource(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}
