package admission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Defaults of ServerOptions.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 15 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultShutdownTimeout   = 25 * time.Second
	// DefaultMaxBodyBytes is controller-runtime's own limit on an
	// AdmissionReview (7 MiB): larger ones are refused before being read.
	DefaultMaxBodyBytes = 7 << 20
	// DefaultMaxInFlightBytes bounds the request bodies handled at once. A
	// request costs about three times its body at its peak (the body, the
	// AdmissionReview's copy of the object, the decoded pod's metadata), so
	// 16 MiB keeps the requests well under the Deployment's 256Mi with the
	// namespace cache and the policies beside them.
	DefaultMaxInFlightBytes = 16 << 20
	// minRequestWeight is what the smallest request reserves: its headers
	// and buffers.
	minRequestWeight = 16 << 10
)

// ServerOptions configure Server. Zero values take the defaults.
type ServerOptions struct {
	// Host and Port are the TLS listen address ("" host: all addresses).
	Host string
	Port int
	// CertDir holds CertName and KeyName (default tls.crt, tls.key), reloaded
	// when they change.
	CertDir, CertName, KeyName string
	// HTTP2 offers h2 in ALPN. Off by default, as in kubebuilder's scaffold
	// since CVE-2023-44487 (HTTP/2 rapid reset): the API server speaks
	// HTTP/1.1 to webhooks just as well.
	HTTP2 bool
	// Timeouts of the HTTP server: ReadHeaderTimeout for the headers,
	// ReadTimeout for the whole request (a stalled body is cut off),
	// WriteTimeout from the end of the headers to the end of the answer,
	// IdleTimeout between requests on a kept-alive connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful stop; connections still open then
	// are closed. It must stay below the manager's grace period.
	ShutdownTimeout time.Duration
	// MaxBodyBytes refuses larger requests (413) before reading them.
	MaxBodyBytes int64
	// MaxInFlightBytes bounds the bodies (Content-Length, MaxBodyBytes when
	// unknown) of the requests handled at once; a request that does not fit
	// is answered at once with 429, which the API server's failurePolicy
	// Ignore turns into an unmodified pod.
	MaxInFlightBytes int64
	// Metrics count the requests refused (optional).
	Metrics *Metrics
	// Log receives the server's errors (TLS handshakes, timeouts) at V(1).
	Log logr.Logger
}

func (o *ServerOptions) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.Port == 0 {
		o.Port = webhook.DefaultPort
	}
	if o.CertName == "" {
		o.CertName = "tls.crt"
	}
	if o.KeyName == "" {
		o.KeyName = "tls.key"
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.MaxInFlightBytes < o.MaxBodyBytes {
		// The largest request accepted must fit alone.
		o.MaxInFlightBytes = o.MaxBodyBytes
	}
}

// Server is the webhook's HTTPS server, a controller-runtime webhook.Server
// that the manager runs. It exists because controller-runtime's own server
// offers HTTP/2 and sets no read or write timeout, and nothing bounds the
// memory of the requests it handles at once: this one serves HTTP/1.1 unless
// told otherwise, times out stalled requests, refuses what does not fit
// (ServerOptions) and stops within its shutdown timeout. Webhooks are
// registered on controller-runtime's server, which keeps its request metrics
// (controller_runtime_webhook_*), and served from its mux.
type Server struct {
	opts    ServerOptions
	inner   webhook.Server
	handler http.Handler
	budget  *semaphore.Weighted

	mu      sync.Mutex
	addr    string // bound address once started
	started atomic.Bool
}

var _ webhook.Server = (*Server)(nil)

// NewServer returns a server with the options' defaults applied.
func NewServer(o ServerOptions) *Server {
	o.setDefaults()
	mux := http.NewServeMux()
	s := &Server{
		opts: o,
		inner: webhook.NewServer(webhook.Options{
			Host: o.Host, Port: o.Port, CertDir: o.CertDir, CertName: o.CertName, KeyName: o.KeyName, WebhookMux: mux,
		}),
		budget: semaphore.NewWeighted(o.MaxInFlightBytes),
	}
	s.handler = s.limit(mux)
	return s
}

// NeedLeaderElection is false: every replica serves.
func (*Server) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *Server) Register(path string, hook http.Handler) { s.inner.Register(path, hook) }

// WebhookMux is the mux the webhooks are registered on.
func (s *Server) WebhookMux() *http.ServeMux { return s.inner.WebhookMux() }

// Addr is the address the server listens on, once started ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// TLSConfig is the server's TLS configuration without a certificate: TLS
// 1.2 or later, and h2 offered only with HTTP2.
func (o *ServerOptions) TLSConfig() *tls.Config {
	protos := []string{"http/1.1"}
	if o.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: protos}
}

// Start serves until ctx ends, then stops gracefully within the shutdown
// timeout.
func (s *Server) Start(ctx context.Context) error {
	o := s.opts
	log := o.Log.WithName("webhook-server")
	cfg := o.TLSConfig()
	watcher, err := certwatcher.New(filepath.Join(o.CertDir, o.CertName), filepath.Join(o.CertDir, o.KeyName))
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	cfg.GetCertificate = watcher.GetCertificate
	go func() {
		if err := watcher.Start(ctx); err != nil {
			log.Error(err, "certificate watcher failed")
		}
	}()

	ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         cfg,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errorLog(log),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if !o.HTTP2 {
		// A non-nil empty map: net/http does not set up HTTP/2.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Info("graceful stop timed out; closing the remaining connections", "timeout", o.ShutdownTimeout.String())
			_ = srv.Close()
		}
	}()
	log.Info("serving", "address", s.addr, "http2", o.HTTP2)
	s.started.Store(true)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook server: %w", err)
	}
	<-stopped
	return nil
}

// StartedChecker is ready once the server accepts TLS connections.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server not started yet")
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", s.Addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reachability only
		if err != nil {
			return fmt.Errorf("webhook server not reachable: %w", err)
		}
		return conn.Close()
	}
}

// Reasons of poddns_webhook_requests_refused_total.
const (
	RefusedTooLarge = "too-large"
	RefusedBusy     = "busy"
)

// limit refuses requests larger than MaxBodyBytes (unread) and those that do
// not fit in the in-flight budget (their bodies dropped after the answer,
// never held in memory).
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := r.ContentLength
		if size > s.opts.MaxBodyBytes {
			s.refused(RefusedTooLarge)
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("poddns: request body of %d bytes, the limit is %d", size, s.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if size < 0 {
			size = s.opts.MaxBodyBytes
		}
		size = max(size, minRequestWeight)
		if !s.budget.TryAcquire(size) {
			s.refused(RefusedBusy)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "poddns: too many requests in progress", http.StatusTooManyRequests)
			// The answer goes out at once; the body is then read and
			// dropped through a small buffer (bounded by MaxBodyBytes and
			// the read timeout), so the client, still sending, reads the
			// answer instead of a reset connection.
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.opts.MaxBodyBytes))
			return
		}
		defer s.budget.Release(size)
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) refused(reason string) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.Refused.WithLabelValues(reason).Inc()
	}
}

// errorLog sends net/http's errors (TLS handshakes, timeouts) to log at
// V(1): a client's mistake is not the server's error.
func errorLog(l logr.Logger) *log.Logger {
	return log.New(logWriter{l.V(1)}, "", 0)
}

type logWriter struct{ l logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Info("http server error", "error", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
