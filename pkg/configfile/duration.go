package configfile

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written in files as Go writes durations
// ("5s", "1m30s", "0s"), as metav1.Duration is. Bind a flag to it with
// pflag's DurationVar((*time.Duration)(&d), ...).
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is d as a file holds it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &valueError{value: string(b), msg: "want a duration such as \"5s\""}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &valueError{value: s, msg: fmt.Sprintf("invalid duration %q: want one such as \"5s\" or \"1m30s\"", s)}
	}
	*d = Duration(v)
	return nil
}

// valueError is a value a type of this package refused. The JSON decoder
// does not say where such an error is: Document.Decode finds the value in
// the document.
type valueError struct {
	value, msg string
}

func (e *valueError) Error() string { return e.msg }
