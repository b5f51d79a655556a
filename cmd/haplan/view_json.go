package main

import (
	"encoding/json"
	"io"

	"github.com/haplan/haplan/internal/termsafe"
	"github.com/haplan/haplan/plans"
)

// renderJSON writes the machine-readable plan: exactly the versioned
// encoding of a saved plan file (plans.Encode), so tools read one format.
func renderJSON(w io.Writer, p *plans.Plan) error {
	return plans.Encode(w, p)
}

// writeJSON writes v as the indented JSON of a --json output, with what a
// terminal must not see escaped (termsafe.JSON): CI logs print it.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(termsafe.JSON(b), '\n'))
	return err
}
