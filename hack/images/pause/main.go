// Command pause is the sandbox ("pause") image's program: it holds a pod's
// namespaces open and does nothing else until SIGTERM or SIGINT, then exits 0.
//
// It exists because the one-node test cluster has no registry to pull
// registry.k8s.io/pause from and `sleep` as PID 1 ignores SIGTERM (the kernel
// drops signals PID 1 has no handler for), so every pod teardown would wait for
// the kill timeout. Like kubernetes' pause.c it also reaps children it inherits
// as PID 1 of a shared PID namespace.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	wait(notify())
	os.Exit(0)
}

// notify starts catching the signals wait handles.
func notify() <-chan os.Signal {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	return sig
}

// wait returns on SIGTERM or SIGINT, reaping children on SIGCHLD meanwhile.
func wait(sig <-chan os.Signal) {
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
