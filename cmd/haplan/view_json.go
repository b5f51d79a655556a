package main

import (
	"io"

	"github.com/haplan/haplan/plans"
)

// renderJSON writes the machine-readable plan: exactly the versioned
// encoding of a saved plan file (plans.Encode), so tools read one format.
func renderJSON(w io.Writer, p *plans.Plan) error {
	return plans.Encode(w, p)
}
