package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Options configure a Server.
type Options struct {
	// Addr is the host:port to listen on, with UDP and TCP. Port 0 picks a
	// free port (the same for both); Server.Addr tells which.
	Addr string
	// Handler is the chain that answers every query.
	Handler Handler
	// UDPSockets is the number of SO_REUSEPORT UDP sockets; 0 means one
	// per core (GOMAXPROCS).
	UDPSockets int
	// OnError, if set, is called with every error a handler returns (a
	// *Error naming the handler when the handler did not wrap it). It is
	// called on the query's goroutine, so it must be cheap and must not log
	// a line per query.
	OnError func(error)
	// TCPIdleTimeout closes a TCP connection without a query in flight
	// after this long without a new one; 0 means DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration
	// TCPWriteTimeout bounds every TCP reply's write; a client that does
	// not read is disconnected. 0 means DefaultTCPWriteTimeout.
	TCPWriteTimeout time.Duration
	// MaxTCPConns caps the TCP connections (the oldest idle one is closed
	// for a new one); 0 means DefaultMaxTCPConns.
	MaxTCPConns int
}

// Server serves one address over UDP and TCP with a Handler chain.
type Server struct {
	opts Options
	tcp  *tcpLoop
	udp  []*udpLoop
	addr string
	done chan error
}

// NewServer checks o and returns a server that is not listening yet.
func NewServer(o Options) (*Server, error) {
	if o.Handler == nil {
		return nil, errors.New("serve: no handler")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("serve: listen address %q: %w", o.Addr, err)
	}
	if o.UDPSockets <= 0 {
		o.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if o.TCPIdleTimeout <= 0 {
		o.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if o.TCPWriteTimeout <= 0 {
		o.TCPWriteTimeout = DefaultTCPWriteTimeout
	}
	if o.MaxTCPConns <= 0 {
		o.MaxTCPConns = DefaultMaxTCPConns
	}
	return &Server{opts: o}, nil
}

// Addr is the address the server listens on (its real port once started).
func (s *Server) Addr() string {
	if s.addr != "" {
		return s.addr
	}
	return s.opts.Addr
}

// Start binds the sockets and returns once every one of them is serving.
// Errors a listener meets later are reported by Wait.
func (s *Server) Start() error {
	udp, tcp, err := s.listen()
	if err != nil {
		return err
	}
	s.addr = tcp.Addr().String()
	h := dns.HandlerFunc(s.serveDNS)
	for _, pc := range udp {
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			for _, pc := range udp {
				pc.Close()
			}
			tcp.Close()
			return fmt.Errorf("serve %s: %T is not a UDP socket", s.addr, pc)
		}
		l, err := newUDPLoop(uc, s.serve, s.opts.OnError)
		if err != nil {
			for _, pc := range udp {
				pc.Close()
			}
			tcp.Close()
			return fmt.Errorf("serve %s: %w", s.addr, err)
		}
		s.udp = append(s.udp, l)
	}
	s.tcp = newTCPLoop(tcp, h, s.opts)
	s.done = make(chan error, 1+len(s.udp))
	// The sockets are bound: reads and accepts succeed from here on.
	for _, l := range s.udp {
		l.start()
		go func() { s.done <- <-l.done }()
	}
	s.tcp.start()
	go func() { s.done <- <-s.tcp.done }()
	return nil
}

// TCPConns is the number of open TCP client connections.
func (s *Server) TCPConns() int {
	if s.tcp == nil {
		return 0
	}
	return int(s.tcp.count.Load())
}

// listen binds the TCP listener and the UDP sockets on one port.
func (s *Server) listen() ([]net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(s.opts.Addr)
	// With port 0 the UDP port the kernel picks may be taken for TCP: try
	// a few ports.
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	var lastErr error
	for range attempts {
		first, err := listenUDP(s.opts.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", s.opts.Addr, err)
		}
		bound := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := listenTCP(bound)
		if err != nil {
			first.Close()
			lastErr = fmt.Errorf("listen tcp %s: %w", bound, err)
			continue
		}
		udp := []net.PacketConn{first}
		for len(udp) < s.opts.UDPSockets {
			pc, err := listenUDP(bound)
			if err != nil {
				for _, c := range udp {
					c.Close()
				}
				tcp.Close()
				return nil, nil, fmt.Errorf("listen udp %s (socket %d): %w", bound, len(udp)+1, err)
			}
			udp = append(udp, pc)
		}
		return udp, tcp, nil
	}
	return nil, nil, lastErr
}

// Wait blocks until a listener stops, and returns its error (nil after
// Shutdown).
func (s *Server) Wait() error {
	return <-s.done
}

// Shutdown stops every listener, waiting for queries in flight until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shutdownAll(ctx)
}

func (s *Server) shutdownAll(ctx context.Context) error {
	var errs []error
	// Stop reading everywhere first, then wait for the answers in flight.
	for _, l := range s.udp {
		if err := l.close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.tcp != nil {
		if err := s.tcp.close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, l := range s.udp {
		if err := l.wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("udp %s: %w", l.conn.LocalAddr(), err))
		}
	}
	if s.tcp != nil {
		if err := s.tcp.wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tcp %s: %w", s.tcp.ln.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.serve(context.Background(), w, r)
}

func (s *Server) serve(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	_, err := Handle(ctx, s.opts.Handler, w, r)
	if err != nil && s.opts.OnError != nil {
		s.opts.OnError(err)
	}
}

// Handle runs h for one query received on w as the Server does: it drops
// responses, answers what is not a standard query with one question and
// well-placed EDNS (NOTIMP; FORMERR, also for two OPT records or one
// outside the additional section; BADVERS) without calling h, gives h a writer that fits
// replies to the client, and writes the reply for a handler that wrote
// nothing. It returns h's rcode and error (wrapped in *Error with h's name
// when not already an *Error). Tests and fuzz targets call it directly.
func Handle(ctx context.Context, h Handler, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if r.Response {
		return dns.RcodeSuccess, nil // never answer a response (reflection loops)
	}
	rw := writers.Get().(*responseWriter)
	*rw = responseWriter{ResponseWriter: w, req: r, proto: Proto(w)}
	defer func() {
		*rw = responseWriter{}
		writers.Put(rw)
	}()
	switch {
	case r.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented, writeRcode(rw, r, dns.RcodeNotImplemented)
	case len(r.Question) != 1, !optPlacement(r):
		return dns.RcodeFormatError, writeRcode(rw, r, dns.RcodeFormatError)
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		return dns.RcodeBadVers, writeRcode(rw, r, dns.RcodeBadVers)
	}
	rcode, err := h.ServeDNS(ctx, rw, r)
	if err != nil {
		var he *Error
		if !errors.As(err, &he) {
			err = &Error{Handler: h.Name(), Err: err}
		}
	}
	if !rw.written {
		if ClientWrite(rcode) {
			// The handler broke the contract: it claims an answer it did
			// not write.
			if err == nil {
				err = &Error{Handler: h.Name(), Err: fmt.Errorf("rcode %s returned without a reply", dns.RcodeToString[rcode])}
			}
			rcode = dns.RcodeServerFailure
		}
		if werr := writeRcode(rw, r, rcode); werr != nil && err == nil {
			err = werr
		}
	}
	return rcode, err
}

// writers are Handle's writers: a handler is done with its writer when it
// returns (the handler contract), so each is reused.
var writers = sync.Pool{New: func() any { return new(responseWriter) }}

// optPlacement reports whether r's OPT records are as RFC 6891 §6.1.1
// wants: at most one, in the additional section, owned by the root. A
// query that breaks this gets FORMERR (as BIND answers it), not an answer
// whose EDNS handling would depend on which OPT record a parser picked.
func optPlacement(r *dns.Msg) bool {
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				return false
			}
		}
	}
	n := 0
	for _, rr := range r.Extra {
		if h := rr.Header(); h.Rrtype == dns.TypeOPT {
			if n++; n > 1 || h.Name != "." {
				return false
			}
		}
	}
	return true
}

// writeRcode writes an empty reply to r with rcode.
func writeRcode(w dns.ResponseWriter, r *dns.Msg, rcode int) error {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	if rcode > 0xF {
		m.Extra = append(m.Extra, newOPT())
	}
	if err := w.WriteMsg(m); err != nil {
		return fmt.Errorf("write %s reply: %w", dns.RcodeToString[rcode], err)
	}
	return nil
}
