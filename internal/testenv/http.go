package testenv

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitHTTP polls url (a health or readiness endpoint of a process a test
// started) until it answers 200 OK, every 50 ms for at most limit. exited,
// if not nil, is closed when the process ends: then waiting stops at once.
// The error says why it gave up.
func WaitHTTP(url string, limit time.Duration, exited <-chan struct{}) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered", url)
		default:
		}
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not OK after %s (last: %v)", url, limit, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a process start, bounded above
	}
}
