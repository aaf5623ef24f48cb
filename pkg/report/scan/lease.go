package scan

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease is the scan's leader election: one replica at a time scans. It is
// the scanner's own, not the controller-runtime manager's, which ends the
// whole process when a renewal fails: a webhook replica must go on serving
// admissions when the API server is too slow to renew a lease in time.
type Lease struct {
	// Name and Namespace name the Lease ("" namespace: the in-cluster
	// ServiceAccount's).
	Name, Namespace string
	// Identity is this replica's ("": host name and a random suffix).
	Identity string
	// Duration, RenewDeadline and RetryPeriod are client-go's (0: 15 s,
	// 10 s, 2 s).
	Duration, RenewDeadline, RetryPeriod time.Duration
}

// inClusterNamespace is where a pod's ServiceAccount namespace is mounted.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func (l *Lease) elector(c *Clients, run func(context.Context)) (*leaderelection.LeaderElector, error) {
	ns := l.Namespace
	if ns == "" {
		b, err := os.ReadFile(inClusterNamespace)
		if err != nil {
			return nil, fmt.Errorf("leader election: no namespace given and not in a cluster: %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	id := l.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + string(uuid.NewUUID())
	}
	d, renew, retry := l.Duration, l.RenewDeadline, l.RetryPeriod
	if d == 0 {
		d, renew, retry = 15*time.Second, 10*time.Second, 2*time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: l.Name, Namespace: ns},
		Client:     c.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: d, RenewDeadline: renew, RetryPeriod: retry,
		ReleaseOnCancel: true, Name: l.Name,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: run, OnStoppedLeading: func() {}},
	})
}
