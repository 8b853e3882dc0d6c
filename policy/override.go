package policy

import "fmt"

// SetToolAccess replaces what the tool named name needs, for a deployment
// whose configuration asks more (or other) of a tool than its code
// declared. The tool must have been added; call it before the server
// serves. It panics on an Access that AddTool would refuse.
func (r *Registry) SetToolAccess(name string, a Access) error {
	r.mu.RLock()
	_, ok := r.tools[name]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("policy: no tool %q", name)
	}
	r.setTool(name, a)
	return nil
}
