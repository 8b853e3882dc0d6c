package resource

import (
	"slices"
	"strings"
)

// A Rule says which scopes an operation needs. Method is a JSON-RPC method;
// Name, if not empty, is the tool or prompt name or resource URI, matched
// exactly or, when it ends in "*", as a prefix.
type Rule struct {
	Method string
	Name   string
	Scopes []string
}

// A ScopePolicy decides the scopes each JSON-RPC operation needs, so that the
// check happens before any handler runs, in both protocol eras.
type ScopePolicy struct {
	rules   []Rule
	implies map[string][]string
}

// NewScopePolicy returns a policy from rules, checked in order (the first
// match decides; no match needs no scope), and a scope hierarchy: implies
// maps a scope to the scopes it includes (e.g. notes:write ⇒ notes:read).
func NewScopePolicy(rules []Rule, implies map[string][]string) *ScopePolicy {
	return &ScopePolicy{rules: slices.Clone(rules), implies: implies}
}

// Required returns every scope the operations need, sorted.
func (p *ScopePolicy) Required(ops [][2]string) []string {
	var need []string
	for _, op := range ops {
		for _, r := range p.rules {
			if r.Method != op[0] || !matchName(r.Name, op[1]) {
				continue
			}
			for _, s := range r.Scopes {
				if !slices.Contains(need, s) {
					need = append(need, s)
				}
			}
			break
		}
	}
	slices.Sort(need)
	return need
}

func matchName(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// Satisfied reports whether granted covers need, honouring the hierarchy.
func (p *ScopePolicy) Satisfied(granted, need []string) bool {
	have := map[string]bool{}
	var add func(s string)
	add = func(s string) {
		if have[s] {
			return
		}
		have[s] = true
		for _, t := range p.implies[s] {
			add(t)
		}
	}
	for _, s := range granted {
		add(s)
	}
	for _, s := range need {
		if !have[s] {
			return false
		}
	}
	return true
}
