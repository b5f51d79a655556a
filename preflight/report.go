package preflight

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Severity ranks a Finding. The zero value is Error, so a Finding built
// without a severity blocks rather than passing silently.
type Severity int

// Severities, most severe first.
const (
	// Error blocks apply.
	Error Severity = iota
	// Warning is shown but does not block.
	Warning
	// Info is a fact worth showing (versions, things not yet created).
	Info
	// OK records a check that passed.
	OK
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	case Info:
		return "info"
	case OK:
		return "ok"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// label is the severity as Render prints it.
func (s Severity) label() string {
	switch s {
	case Error:
		return "ERROR"
	case Warning:
		return "WARN"
	}
	return s.String()
}

// MarshalText encodes the severity as "error", "warning", "info" or "ok".
func (s Severity) MarshalText() ([]byte, error) {
	if s < Error || s > OK {
		return nil, fmt.Errorf("unknown severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText is the inverse of MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	for v := Error; v <= OK; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Finding is one result of one check on one host.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check names the check: "size", "ssh", "docker", "ports",
	// "bootstrap.port", "reach", "udp", "memory", "clock", "lb",
	// "mysql.admin", "mysql.app", "mysql.version", "max_connections".
	Check string `json:"check"`
	// Host is a manifest name ("rs1", "lb"), "db" for the database, or
	// empty for the cluster as a whole.
	Host    string `json:"host,omitempty"`
	Message string `json:"message"`
	// Hint says what to do about it, when there is something to do.
	Hint string `json:"hint,omitempty"`
}

func (f Finding) String() string {
	var b strings.Builder
	if f.Host != "" {
		b.WriteString(f.Host + ": ")
	}
	b.WriteString(f.Check + ": " + f.Message)
	return b.String()
}

// Report is everything Run found.
type Report struct {
	Findings []Finding `json:"findings"`
}

// Errors returns the blocking findings.
func (r *Report) Errors() []Finding { return r.bySeverity(Error) }

// Warnings returns the findings that are shown but do not block.
func (r *Report) Warnings() []Finding { return r.bySeverity(Warning) }

func (r *Report) bySeverity(s Severity) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == s {
			out = append(out, f)
		}
	}
	return out
}

// OK reports whether nothing blocks apply.
func (r *Report) OK() bool { return len(r.Errors()) == 0 }

// Err returns nil when nothing blocks, else a *BlockedError listing the
// blocking findings; it matches ErrBlocked with errors.Is.
func (r *Report) Err() error {
	errs := r.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &BlockedError{Findings: errs}
}

// ErrBlocked is matched (errors.Is) by the error of a Report with blocking
// findings. Not retried: something on the hosts or the database must be
// fixed first (a timeout may be transient; run the check again).
var ErrBlocked = errors.New("preflight found blocking problems")

// BlockedError lists the findings that block apply.
type BlockedError struct {
	Findings []Finding
}

func (e *BlockedError) Error() string {
	parts := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		parts[i] = f.String()
	}
	noun := "problems"
	if len(parts) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("preflight: %d blocking %s: %s", len(parts), noun, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// sorted returns the findings ordered for people: hosts with errors first
// (then warnings), the cluster-wide group before named hosts of the same
// rank; within a host, by severity, then check name.
func sorted(fs []Finding) []Finding {
	worst := map[string]Severity{}
	for _, f := range fs {
		if w, ok := worst[f.Host]; !ok || f.Severity < w {
			worst[f.Host] = f.Severity
		}
	}
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(worst[a.Host], worst[b.Host]),
			cmp.Compare(a.Host, b.Host),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Check, b.Check),
		)
	})
	return out
}

// Render writes the report for people: one block per host (hosts with
// errors first), errors first within a host, each hint under its finding,
// and a summary line.
func Render(w io.Writer, r *Report) error {
	fs := sorted(r.Findings)
	width := 0
	for _, f := range fs {
		width = max(width, len(f.Check))
	}
	var b strings.Builder
	host := "\x00"
	for _, f := range fs {
		if f.Host != host {
			if host != "\x00" {
				b.WriteByte('\n')
			}
			host = f.Host
			name := host
			if name == "" {
				name = "cluster"
			}
			b.WriteString(name + "\n")
		}
		fmt.Fprintf(&b, "  %-5s  %-*s  %s\n", f.Severity.label(), width, f.Check, indent(f.Message, 11+width))
		if f.Hint != "" {
			fmt.Fprintf(&b, "  %-5s  %-*s  hint: %s\n", "", width, "", indent(f.Hint, 17+width))
		}
	}
	if len(fs) > 0 {
		b.WriteByte('\n')
	}
	nErr, nWarn := len(r.Errors()), len(r.Warnings())
	switch {
	case nErr > 0:
		fmt.Fprintf(&b, "Preflight: %s, %s: apply is blocked.\n", plural(nErr, "error"), plural(nWarn, "warning"))
	case nWarn > 0:
		fmt.Fprintf(&b, "Preflight: no errors, %s.\n", plural(nWarn, "warning"))
	default:
		b.WriteString("Preflight: all checks passed.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func indent(s string, n int) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+strings.Repeat(" ", n))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
