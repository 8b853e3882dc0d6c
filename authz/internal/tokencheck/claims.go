package tokencheck

import "slices"

// Bounds on the groups read from an external token: at most MaxGroups
// names, each at most MaxGroupLen bytes (a longer one is dropped, never
// cut).
const (
	MaxGroups   = 100
	MaxGroupLen = 256
)

// Groups reads a groups or roles claim (ClaimNames), bounded to
// MaxGroups (Bound); anything else is nil.
func Groups(v any) []string { return Bound(ClaimNames(v), MaxGroups) }

// ClaimNames reads the names of a groups or roles claim: an array of
// strings, one string, or an object whose keys are the names (ZITADEL's
// roles); anything else is nil. The names are as the claim has them:
// Bound sorts and bounds them.
func ClaimNames(v any) []string {
	var out []string
	switch c := v.(type) {
	case string:
		out = []string{c}
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = slices.Clone(c)
	case map[string]any:
		for k := range c {
			out = append(out, k)
		}
	}
	return out
}

// Bound sorts and de-duplicates groups, drops the empty ones and those
// longer than MaxGroupLen (never cut, so that no cut name can equal
// another), and keeps at most limit (0: all). It never changes groups,
// and returns nil for none.
func Bound(groups []string, limit int) []string {
	out := slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == "" || len(g) > MaxGroupLen })
	slices.Sort(out)
	out = slices.Compact(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// SetUserClaims puts the user's groups ("groups", []string) and e-mail
// address ("email", string) into a TokenInfo's Extra: the address only
// when verified is true, so that an address nobody checked never reaches
// a policy.
func SetUserClaims(extra map[string]any, groups, email, verified any) {
	if g := Groups(groups); g != nil {
		extra["groups"] = g
	}
	if e, ok := email.(string); ok && e != "" && len(e) <= 254 && verified == true {
		extra["email"] = e
	}
}

// CloneExtra copies a TokenInfo's Extra for a caller, with its own copy
// of the groups, so that no caller can change what a cache holds.
func CloneExtra(extra map[string]any) map[string]any {
	out := make(map[string]any, len(extra))
	for k, v := range extra {
		if g, ok := v.([]string); ok {
			v = slices.Clone(g)
		}
		out[k] = v
	}
	return out
}
