package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/poddns/poddns/pkg/manifest"
	"github.com/poddns/poddns/pkg/render"
)

// namespaces is the first of two passes over the manifests, for commands
// with policies: Namespace documents may come after the pods that need their
// labels, so they are read first, one document at a time like the pods after
// them. Stdin cannot be read twice: it is spooled to an unlinked temporary
// file (at most one byte more than manifest.MaxInputSize, which the reader
// then reports as too large).
type namespaces struct {
	// stdin stands for stdin in the second pass: the spooled file, rewound.
	stdin io.Reader
	// labels are the namespaces' labels by name (render.NamespaceLabels).
	labels map[string]map[string]string
	// readErr is the first pass's error: the second one meets the same.
	readErr error
	spool   *os.File
}

// readNamespaces makes the first pass over filenames; close it when done.
func readNamespaces(filenames []string, stdin io.Reader) (*namespaces, error) {
	ns := &namespaces{stdin: stdin}
	if stdin != nil && slices.Contains(filenames, "-") {
		f, err := spoolStdin(stdin)
		if err != nil {
			return nil, err
		}
		ns.stdin, ns.spool = f, f
	}
	var nss []manifest.Namespace
	ns.readErr = manifest.ReadEach(filenames, ns.stdin, func(set *manifest.Set) {
		nss = append(nss, set.Namespaces...)
	})
	ns.labels = render.NamespaceLabels(nss)
	if ns.spool != nil {
		if _, err := ns.spool.Seek(0, io.SeekStart); err != nil {
			ns.close()
			return nil, fmt.Errorf("rewind spooled stdin: %w", err)
		}
	}
	return ns, nil
}

func (ns *namespaces) close() {
	if ns.spool != nil {
		ns.spool.Close()
	}
}

// spoolStdin copies stdin to an unlinked temporary file and returns it
// rewound.
func spoolStdin(stdin io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "poddns-stdin-*")
	if err != nil {
		return nil, fmt.Errorf("spool stdin: %w", err)
	}
	_ = os.Remove(f.Name()) // the open file stays readable
	if _, err := io.Copy(f, io.LimitReader(stdin, manifest.MaxInputSize+1)); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool stdin: read %s: %w", manifest.Stdin, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool stdin: %w", err)
	}
	return f, nil
}
