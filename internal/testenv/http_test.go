package testenv

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitHTTP: it returns once the endpoint answers 200, gives up after
// the limit on anything else, and at once when the process has exited.
func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer ok.Close()
	if err := WaitHTTP(ok.URL, 5*time.Second, nil); err != nil || calls.Load() != 3 {
		t.Errorf("WaitHTTP = %v after %d calls, want nil after 3", err, calls.Load())
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer never.Close()
	if err := WaitHTTP(never.URL, 200*time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("WaitHTTP on a 503 = %v, want an error with the status", err)
	}
	exited := make(chan struct{})
	close(exited)
	if err := WaitHTTP(never.URL, time.Minute, exited); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitHTTP with the process gone = %v, want the exit", err)
	}
}
