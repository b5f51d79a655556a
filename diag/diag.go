// Package diag holds diagnostics: errors and warnings about a user's input
// that carry the source position they refer to, and renders them either
// terraform-style (a snippet of the source with a caret) or as compact
// "file:line:col: error: message" lines for editors and CI logs.
//
// Producers report a Path (such as "nodes[2].address") and, where they know
// it, a Subject range. Diagnostics never contain secret values: producers
// must only describe references to secrets.
package diag

import (
	"errors"
	"fmt"
	"strings"
)

// Severity says whether a diagnostic stops the run.
type Severity int

const (
	// Error diagnostics make the input unusable.
	Error Severity = iota
	// Warning diagnostics describe legal but questionable input.
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	default:
		return fmt.Sprintf("severity(%d)", int(s))
	}
}

// Pos is a position in a source file. Line and Column are 1-based (Column
// counts bytes); Byte is the 0-based byte offset.
type Pos struct {
	Line, Column, Byte int
}

// Range is a span of a source file; End is exclusive.
type Range struct {
	Filename   string
	Start, End Pos
}

// String returns "file:line:col".
func (r Range) String() string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// Diagnostic is one problem found in the input.
type Diagnostic struct {
	Severity Severity
	Summary  string
	// Detail explains the problem or how to fix it; may be empty.
	Detail string
	// Path is the value the diagnostic is about, e.g. "nodes[2].address";
	// empty for problems with the file as a whole.
	Path string
	// Subject is where in the source the problem is; nil when unknown.
	Subject *Range
}

// Compact returns the one-line form:
//
//	cluster.yaml:12:5: error: unknown field "adress" (did you mean "address"?)
func (d Diagnostic) Compact() string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(d.Subject.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Subject == nil && d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Summary)
	if det := oneLine(d.Detail); det != "" {
		b.WriteString(" (")
		b.WriteString(lowerFirst(strings.TrimSuffix(det, ".")))
		b.WriteString(")")
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// lowerFirst lower-cases a leading capital unless it starts an acronym
// ("HA needs" stays as it is).
func lowerFirst(s string) string {
	if len(s) >= 2 && s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z') {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// Diagnostics is a list of diagnostics in the order they were found.
type Diagnostics []Diagnostic

// Append adds diagnostics and returns the extended list.
func (ds Diagnostics) Append(more ...Diagnostic) Diagnostics {
	return append(ds, more...)
}

// HasErrors reports whether any diagnostic has Error severity.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the Error diagnostics.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Warnings returns only the Warning diagnostics.
func (ds Diagnostics) Warnings() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Warning {
			out = append(out, d)
		}
	}
	return out
}

// Err returns nil when there are no errors, and otherwise an *Error that
// keeps every diagnostic (warnings too) for errors.As.
func (ds Diagnostics) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	return &DiagnosticsError{Diagnostics: ds}
}

// DiagnosticsError is the error form of Diagnostics that contain errors.
type DiagnosticsError struct {
	Diagnostics Diagnostics
}

// Error returns the compact form of the first error and a count of the
// others.
func (e *DiagnosticsError) Error() string {
	errs := e.Diagnostics.Errors()
	if len(errs) == 0 {
		return "no errors"
	}
	msg := errs[0].Compact()
	if n := len(errs) - 1; n == 1 {
		msg += " (and 1 more error)"
	} else if n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n)
	}
	return msg
}

// Is makes errors.Is(err, ErrInvalid) true for every DiagnosticsError.
func (e *DiagnosticsError) Is(target error) bool { return target == ErrInvalid }

// ErrInvalid matches, through errors.Is, any error returned by
// Diagnostics.Err: the input was rejected and the diagnostics say why.
var ErrInvalid = errors.New("invalid input")
