// Package wholefile decides whether a watched file was read whole, so that a
// reload of a file caught half-written (an editor saving in place, `kubectl
// get ... > file` still running, a ConfigMap update) is refused instead of
// serving a part of it.
//
// A file that merely parses proves nothing: a YAML stream cut at a `---`
// boundary, a YAML list cut after an item and a mapping cut between two
// keys all parse. The rule is therefore about the file's shape:
//
//	A file is whole when it holds exactly one YAML or JSON document, that
//	document is a mapping, and its key "kind" comes after its content key
//	("items" for a List), with a value that ends as expected ("List").
//
// `kubectl get ... -o yaml` and `-o json` write Lists in exactly that order
// (apiVersion, items, kind, metadata), so their output is whole, and cut
// anywhere before its end it has no kind after the items. A JSON file cut
// anywhere does not parse at all. Multi-document streams are never whole: a
// cut at a document boundary cannot be told from the end of the stream.
//
// Check applies the rule; a caller decides what an incomplete file costs
// (dnsd refuses to reload its objects file from one and keeps serving the
// last good state).
package wholefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrNotWhole is wrapped by every error Check returns for a file that parses
// but may have been cut.
var ErrNotWhole = errors.New("file may be incomplete")

// Check reports whether data is a whole file by the package's rule, with
// contentKey the key that must precede "kind" ("items" for a List) and
// kindSuffix the end of every acceptable kind ("List": also PodList, ...;
// a kind cut short does not end so). A file that does not parse is an
// error that does not wrap ErrNotWhole.
func Check(data []byte, contentKey, kindSuffix string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: empty", ErrNotWhole)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no document", ErrNotWhole)
		}
		return fmt.Errorf("parse: %w", err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return fmt.Errorf("%w: several documents (a stream cut at a --- boundary still parses); write one %s document instead", ErrNotWhole, want(contentKey))
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("parse: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: the document is not a mapping", ErrNotWhole)
	}
	content, kind := -1, -1
	var kindValue string
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case contentKey:
			content = i
		case "kind":
			kind = i
			kindValue = root.Content[i+1].Value
		}
	}
	switch {
	case content < 0:
		return fmt.Errorf("%w: no %q key; write one %s document", ErrNotWhole, contentKey, want(contentKey))
	case kind < 0:
		return fmt.Errorf("%w: no \"kind\" key after %q", ErrNotWhole, contentKey)
	case kind < content:
		return fmt.Errorf("%w: \"kind\" comes before %q, so a cut inside %q would go unnoticed; put kind after %s, as kubectl does", ErrNotWhole, contentKey, contentKey, contentKey)
	case !strings.HasSuffix(kindValue, kindSuffix):
		return fmt.Errorf("%w: kind %q does not end in %q", ErrNotWhole, kindValue, kindSuffix)
	}
	return nil
}

func want(contentKey string) string {
	if contentKey == "items" {
		return "List (kubectl get -o yaml)"
	}
	return fmt.Sprintf("document with %q before \"kind\"", contentKey)
}
