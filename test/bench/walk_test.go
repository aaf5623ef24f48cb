package bench

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poddns/poddns/internal/testenv"
)

var reGai = regexp.MustCompile(`lookups=(\d+) failures=(\d+) seconds=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+) p999_ms=([0-9.]+)`)

// searchWalk measures getaddrinfo lookups per second as a pod makes them:
// glibc (testdata/gai_loop.c, 4 threads, pinned to CPU 1) inside a network
// namespace whose address is the bench-walker Pod's IP, with the resolv.conf
// kubelet writes for a ClusterFirst pod in walkerNS (ndots:5), against each
// server in turn (A B A B, rounds times). Names: external names (found by
// the upstream after the whole walk) and Services of other namespaces
// (found in the second search domain). It returns the lookups per second
// of each round per server.
func searchWalk(t *testing.T, tl *tools, dir, podNS string, sc scale, rounds, seconds int, servers []*server) map[string][]float64 {
	t.Helper()
	var names []string
	for i := range 25 {
		names = append(names, fmt.Sprintf("host-%d.example.com", i))
	}
	for i := 1; len(names) < 50 && i < sc.Services; i++ {
		if i%sc.Namespaces != 0 { // another namespace than the walker's
			names = append(names, fmt.Sprintf("svc-%d.%s", i, nsName(i%sc.Namespaces)))
		}
	}
	nss := testenv.WriteFile(t, dir, "nsswitch.conf", "hosts: files dns\n")
	hosts := testenv.WriteFile(t, dir, "hosts", "127.0.0.1 localhost\n")
	run := func(s *server, secs int) (lookups, failures int64, elapsed float64, line string) {
		conf := testenv.WriteFile(t, dir, "resolv-"+s.name+".conf",
			"search "+walkerNS+".svc.cluster.local svc.cluster.local cluster.local\nnameserver "+s.ip+"\noptions ndots:5\n")
		args := []string{"--net=" + podNS, "--", tl.unshare, "--mount", "--propagation", "private", "--",
			tl.sh, "-c", `mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf && mount --bind "$3" /etc/hosts && shift 3 && exec "$@"`,
			"sh", conf, nss, hosts, tl.taskset, "-c", "1", tl.gai, strconv.Itoa(secs), "1000000", "4"}
		out, err := exec.Command(tl.nsenter, append(args, names...)...).CombinedOutput()
		m := reGai.FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("gai_loop against %s: %v\n%s", s.name, err, out)
		}
		lookups, _ = strconv.ParseInt(string(m[1]), 10, 64)
		failures, _ = strconv.ParseInt(string(m[2]), 10, 64)
		elapsed, _ = strconv.ParseFloat(string(m[3]), 64)
		return lookups, failures, elapsed, strings.TrimSpace(string(m[0]))
	}
	for _, s := range servers {
		if _, fails, _, line := run(s, 2); fails > 0 {
			t.Logf("search-walk warm-up against %s: %s (failed lookups: check the setup)", s.name, line)
		}
	}
	res := map[string][]float64{}
	for r := range rounds {
		for _, s := range servers {
			n, fails, el, line := run(s, seconds)
			if fails > 0 {
				t.Errorf("search-walk against %s: %d of %d lookups failed", s.name, fails, n)
			}
			res[s.name] = append(res[s.name], round(float64(n)/el, 0))
			t.Logf("round %d search-walk      %-16s %8.0f lookups/s (%s)", r+1, s.name, float64(n)/el, line)
		}
	}
	return res
}

// walkerNamespace makes the bench-walker Pod's network namespace: joined to
// the benchmark's namespace by a veth pair, its address walkerIP, routes to
// the servers' addresses (192.0.2.0/24), the node-local IP and the cluster
// DNS IP (kube-proxy's DNAT to the central dnsd) through the pair, as a pod
// reaches them through its node. It returns the namespace's path.
func walkerNamespace(t *testing.T, tl *tools) string {
	t.Helper()
	holder := startProcess(t, "walker-netns", nil, tl.unshare, "--net", "--", tl.sleep, "3600")
	podNS := fmt.Sprintf("/proc/%d/ns/net", holder.pid())
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ns, err := os.Readlink(podNS); err == nil && ns != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the walker's network namespace did not appear")
		}
		time.Sleep(20 * time.Millisecond) // waiting for unshare, bounded above
	}
	inPod := func(args ...string) { must(t, tl.nsenter, append([]string{"--net=" + podNS, "--"}, args...)...) }
	must(t, tl.ip, "link", "add", "bwalk0", "type", "veth", "peer", "name", "bwalk1")
	must(t, tl.ip, "link", "set", "bwalk1", "netns", strconv.Itoa(holder.pid()))
	must(t, tl.ip, "link", "set", "bwalk0", "up")
	must(t, tl.ip, "route", "add", walkerIP+"/32", "dev", "bwalk0")
	inPod(tl.ip, "link", "set", "lo", "up")
	inPod(tl.ip, "addr", "add", walkerIP+"/32", "dev", "bwalk1")
	inPod(tl.ip, "link", "set", "bwalk1", "up")
	inPod(tl.ip, "route", "add", "192.0.2.0/24", "dev", "bwalk1", "src", walkerIP)
	inPod(tl.ip, "route", "add", ipNodeLocal+"/32", "dev", "bwalk1", "src", walkerIP)
	// The cluster DNS IP is no address of the node: through a gateway
	// (any address the node answers ARP for), as a pod's default route.
	inPod(tl.ip, "route", "add", ipClusterDNS+"/32", "via", ipUpstream, "dev", "bwalk1", "src", walkerIP)
	return podNS
}
