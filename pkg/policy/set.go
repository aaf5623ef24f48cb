package policy

// Set is a validated, compiled set of policies in precedence order. It is
// read-only and safe for concurrent use.
type Set struct {
	policies []*compiled
	// selectors is the number of distinct selectors (internSelectors).
	selectors int
}

// Len returns the number of policies.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}

// Info describes a policy of a Set.
type Info struct {
	Name     string
	Priority int32
	Mode     Mode
	Source   Source
	Policy   Policy
}

// Policies returns the policies in precedence order (ascending priority, then
// name): the order Evaluate applies them in.
func (s *Set) Policies() []Info {
	if s == nil {
		return nil
	}
	out := make([]Info, len(s.policies))
	for i, c := range s.policies {
		out[i] = Info{Name: c.name, Priority: c.priority, Mode: c.mode, Source: c.source, Policy: c.policy}
	}
	return out
}
