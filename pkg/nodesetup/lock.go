package nodesetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// nodeLock is one instance's hold on the lock file shared by the
// instances on a node: a shared flock for as long as the instance runs.
// The instance that can turn it into an exclusive lock when it stops is
// the last one, and only it tears the setup down; an instance starting
// meanwhile waits for its shared lock until the teardown is over. The
// kernel drops the lock of a killed process, so a crash never blocks the
// next instance.
type nodeLock struct{ f *os.File }

// lockPoll is how often a waiting instance retries the lock.
const lockPoll = 50 * time.Millisecond

// acquireShared opens (creating it and its directory) the lock file and
// takes a shared lock, waiting while another instance holds it
// exclusively (a last instance tearing down), until ctx ends.
func acquireShared(ctx context.Context, path string) (*nodeLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return &nodeLock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock file %s: shared lock: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock file %s: waiting for the last instance to finish its teardown: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// tryLast tries to turn the shared lock into an exclusive one without
// waiting: true means no other instance holds the file, so this one is the
// last. Linux does not convert flocks atomically: when it fails, this
// instance holds no lock any more (it is stopping anyway).
func (l *nodeLock) tryLast() (bool, error) {
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	default:
		return false, fmt.Errorf("lock file %s: exclusive lock: %w", l.f.Name(), err)
	}
}

// release drops whatever lock is held and closes the file.
func (l *nodeLock) release() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}
