package diag

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/haplan/haplan/internal/termsafe"
)

// JSONFormatVersion is the format_version of WriteJSON's document; it
// changes only incompatibly.
const JSONFormatVersion = "1"

// jsonDoc is the document WriteJSON writes, shaped like terraform's
// `validate -json` output.
type jsonDoc struct {
	FormatVersion string     `json:"format_version"`
	Valid         bool       `json:"valid"`
	ErrorCount    int        `json:"error_count"`
	WarningCount  int        `json:"warning_count"`
	Diagnostics   []jsonDiag `json:"diagnostics"`
}

type jsonDiag struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Path     string     `json:"path,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	// Snippet is the source line the range starts on, as written (JSON
	// escapes what a terminal must not see).
	Snippet string `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// WriteJSON writes every diagnostic (none left out, unlike Render) as one
// JSON document; valid is false when there is an error.
func WriteJSON(w io.Writer, ds Diagnostics, sources map[string][]byte) error {
	doc := jsonDoc{FormatVersion: JSONFormatVersion, Valid: !ds.HasErrors(), Diagnostics: []jsonDiag{}}
	idx := lineIndexes{sources: sources}
	for _, d := range ds {
		if d.Severity == Error {
			doc.ErrorCount++
		} else {
			doc.WarningCount++
		}
		jd := jsonDiag{Severity: d.Severity.String(), Summary: d.Summary, Detail: d.Detail, Path: d.Path}
		if r := d.Subject; r != nil {
			jd.Range = &jsonRange{Filename: r.Filename,
				Start: jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte}, End: jsonPos{r.End.Line, r.End.Column, r.End.Byte}}
			jd.Snippet, _ = idx.line(r.Filename, r.Start.Line)
		}
		doc.Diagnostics = append(doc.Diagnostics, jd)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := w.Write(termsafe.JSON(b.Bytes()))
	return err
}
