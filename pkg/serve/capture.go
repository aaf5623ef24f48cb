package serve

import "github.com/miekg/dns"

// Capture is a ResponseWriter that keeps the reply instead of sending it,
// for a handler that asks the chain a question of its own (the target of an
// ExternalName CNAME, a search-list completion). The client's addresses are
// those of the writer it wraps. The kept message may be shared with the
// handler that wrote it: copy before mutating.
type Capture struct {
	dns.ResponseWriter
	Msg *dns.Msg
}

// NewCapture wraps w, the writer of the query being answered.
func NewCapture(w dns.ResponseWriter) *Capture { return &Capture{ResponseWriter: w} }

// WriteMsg keeps m.
func (c *Capture) WriteMsg(m *dns.Msg) error {
	c.Msg = m
	return nil
}

// Write keeps a packed message.
func (c *Capture) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	c.Msg = m
	return len(b), nil
}
