package plans

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/haplan/haplan/internal/termsafe"
)

// ErrFormatVersion is returned by Decode for a plan written in a format this
// version of haplan does not read. Never retried: make a new plan.
var ErrFormatVersion = errors.New("unsupported plan format version")

// Encode writes p as indented, versioned JSON.
func Encode(w io.Writer, p *Plan) error {
	if p.FormatVersion == "" {
		p.FormatVersion = FormatVersion
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	// A plan holds what remote machines said: nothing in it may act on
	// the terminal of whoever reads the file or the output.
	_, err := w.Write(termsafe.JSON(b.Bytes()))
	return err
}

// Decode reads a plan written by Encode. Unknown fields are an error: a plan
// is executed exactly, so a field this version does not understand is not
// silently dropped.
func Decode(r io.Reader) (*Plan, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if p.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("decode plan: format_version %q (this haplan reads %q): %w", p.FormatVersion, FormatVersion, ErrFormatVersion)
	}
	return &p, nil
}
