package configfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	yaml "go.yaml.in/yaml/v3"
)

// MaxFileSize is the most read of one file.
const MaxFileSize = 4 << 20

// IsMapping reports whether the document is a mapping (an object).
func (d *Document) IsMapping() bool { return d.root.Kind == yaml.MappingNode }

// Paths is implemented by a configuration that names files: Paths returns
// the fields that hold paths (nil pointers are skipped), which DecodeFile
// resolves against the configuration file's directory.
type Paths interface {
	Paths() []*string
}

// Validator is a configuration that checks itself once loaded.
type Validator interface {
	Validate() error
}

// ReadFile reads the file at path, at most MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, path)
}

// ReadAll reads r, a file named name in errors, to its end: at most
// MaxFileSize bytes, more is an *Error.
func ReadAll(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Message: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}
	}
	return data, nil
}

// Decode decodes data, the content of a file named file in errors, into v
// (a pointer to the configuration, holding its defaults): exactly one
// document of identity id, decoded strictly. The errors are *Error values,
// joined.
func Decode(data []byte, file string, id Identity, v any) error {
	docs, errs := Split(data, file)
	switch {
	case len(errs) > 0:
		return errors.Join(errs...)
	case len(docs) == 0:
		return &Error{File: file, Message: fmt.Sprintf("no document: expected one %s", id.Kind)}
	case len(docs) > 1:
		return docs[1].Errorf("", "%d documents: expected one %s", len(docs), id.Kind)
	}
	d := docs[0]
	if !d.IsMapping() {
		return d.Errorf("", "not a mapping: expected a %s", id.Kind)
	}
	if errs := d.Decode(v); len(errs) > 0 {
		return errors.Join(errs...)
	}
	return errors.Join(d.Check(id)...)
}

// DecodeFile reads the file at path and decodes it with Decode; when v
// implements Paths, the relative paths it names are then made relative to
// the file's directory.
func DecodeFile(path string, id Identity, v any) error {
	data, err := ReadFile(path)
	if err != nil {
		return err // names the path
	}
	if err := Decode(data, path, id, v); err != nil {
		return err
	}
	if p, ok := v.(Paths); ok {
		ResolvePaths(filepath.Dir(path), p.Paths()...)
	}
	return nil
}

// ResolvePaths makes every relative, non-empty path relative to dir, as
// kubelet resolves the paths of its configuration file.
func ResolvePaths(dir string, paths ...*string) {
	for _, p := range paths {
		if p != nil && *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Load builds a configuration in cfg, a pointer holding the defaults: the
// file at path decoded over them (DecodeFile; no file when path is ""),
// then bind, which parses the command line onto cfg's fields (nil: no
// flags), so that a flag given explicitly wins whatever its value; then
// cfg's Validate, when it has one.
func Load(path string, id Identity, cfg any, bind func() error) error {
	if path != "" {
		if err := DecodeFile(path, id, cfg); err != nil {
			return err
		}
	}
	if bind != nil {
		if err := bind(); err != nil {
			return err
		}
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
	}
	return nil
}

// SetFlags sets on to every flag given on from (pflag's Changed), by name:
// it binds a command line already parsed (cobra's) onto the fields of a
// configuration decoded since. Flags of from that to does not define are
// skipped; list flags are replaced as a whole.
func SetFlags(from, to *pflag.FlagSet) error {
	var errs []error
	from.Visit(func(f *pflag.Flag) {
		t := to.Lookup(f.Name)
		if t == nil {
			return
		}
		var err error
		if fv, ok := f.Value.(pflag.SliceValue); ok {
			if tv, ok := t.Value.(pflag.SliceValue); ok {
				err = tv.Replace(fv.GetSlice())
				t.Changed = true
			} else {
				err = fmt.Errorf("--%s: not a list flag", f.Name)
			}
		} else {
			err = to.Set(f.Name, f.Value.String())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	return errors.Join(errs...)
}
