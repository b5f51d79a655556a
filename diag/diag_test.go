package diag

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const src = "name: lab\nnodes:\n  - name: rs1\n    adress: 10.0.0.12\n\tx: \"é\" y\n"

func unknownField() Diagnostic {
	return Diagnostic{
		Severity: Error, Summary: `unknown field "adress"`, Detail: `Did you mean "address"?`, Path: "nodes[1]",
		Subject: &Range{Filename: "cluster.yaml", Start: Pos{Line: 4, Column: 5, Byte: 35}, End: Pos{Line: 4, Column: 11, Byte: 41}},
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		ds      Diagnostics
		sources map[string][]byte
		want    string
	}{
		{"snippet and caret", Diagnostics{unknownField()}, map[string][]byte{"cluster.yaml": []byte(src)},
			"Error: unknown field \"adress\"\n\n  on cluster.yaml line 4, column 5, in nodes[1]:\n  4:     adress: 10.0.0.12\n         ^\nDid you mean \"address\"?\n"},
		{"no source", Diagnostics{unknownField()}, nil,
			"Error: unknown field \"adress\"\n\n  on cluster.yaml line 4, column 5, in nodes[1]:\nDid you mean \"address\"?\n"},
		{"tabs and multibyte keep the caret aligned",
			Diagnostics{{Severity: Warning, Summary: "w", Subject: &Range{Filename: "f", Start: Pos{Line: 5, Column: 10}}}},
			map[string][]byte{"f": []byte(src)},
			"Warning: w\n\n  on f line 5, column 10:\n  5: \tx: \"é\" y\n     \t       ^\n"},
		{"path only", Diagnostics{{Severity: Error, Summary: "s", Path: "database.host"}}, nil,
			"Error: s\n\n  in database.host\n"},
		{"two are separated", Diagnostics{{Summary: "a"}, {Summary: "b", Detail: "d\n"}}, nil,
			"Error: a\n\nError: b\nd\n"},
		{"line past the end", Diagnostics{{Summary: "a", Subject: &Range{Filename: "f", Start: Pos{Line: 99, Column: 1}}}},
			map[string][]byte{"f": []byte(src)}, "Error: a\n\n  on f line 99, column 1:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := Render(&b, tt.ds, tt.sources); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("Render (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	tests := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{"with hint", unknownField(), `cluster.yaml:4:5: error: unknown field "adress" (did you mean "address"?)`},
		{"acronym kept", Diagnostic{Severity: Warning, Summary: "s", Detail: "HA is\nhard."}, "warning: s (HA is hard)"},
		{"path without subject", Diagnostic{Summary: "s", Path: "a.b"}, "error: a.b: s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Compact(); got != tt.want {
				t.Errorf("Compact() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErr(t *testing.T) {
	var none Diagnostics
	if err := none.Append(Diagnostic{Severity: Warning, Summary: "w"}).Err(); err != nil {
		t.Errorf("warnings only: Err() = %v, want nil", err)
	}
	ds := none.Append(Diagnostic{Severity: Warning, Summary: "w"}, unknownField(), Diagnostic{Summary: "second"})
	if !ds.HasErrors() || len(ds.Errors()) != 2 || len(ds.Warnings()) != 1 {
		t.Fatalf("HasErrors/Errors/Warnings wrong for %v", ds)
	}
	err := fmt.Errorf("load: %w", ds.Err())
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("errors.As failed for %v", err)
	}
	if diff := cmp.Diff(ds, de.Diagnostics); diff != "" {
		t.Errorf("kept diagnostics (-want +got):\n%s", diff)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	want := `load: cluster.yaml:4:5: error: unknown field "adress" (did you mean "address"?) (and 1 more error)`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderWriteError(t *testing.T) {
	if err := Render(failWriter{}, Diagnostics{unknownField()}, nil); err == nil {
		t.Errorf("Render to a failing writer returned nil")
	}
	if err := RenderCompact(failWriter{}, Diagnostics{unknownField()}); err == nil {
		t.Errorf("RenderCompact to a failing writer returned nil")
	}
}

// A manifest's text never reaches the terminal raw: ESC sequences and
// bidirectional overrides in a key are escaped in the summary and the
// snippet, and the caret still points under the key.
func TestRenderEscapesControlCharacters(t *testing.T) {
	src := "name: x\n\x1b[31mevil\u202e: 1\n"
	d := Diagnostic{Severity: Error, Summary: "unknown field \"\x1b[31mevil\u202e\"",
		Subject: &Range{Filename: "f", Start: Pos{Line: 2, Column: 1}}}
	var b strings.Builder
	if err := Render(&b, Diagnostics{d}, map[string][]byte{"f": []byte(src)}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	want := "Error: unknown field \"\\x1b[31mevil\\u202e\"\n\n  on f line 2, column 1:\n  2: \\x1b[31mevil\\u202e: 1\n     ^\n"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	if strings.ContainsAny(got, "\x1b\u202e") {
		t.Error("a control character reached the output")
	}
}

// Render writes MaxRendered diagnostics in full and counts the rest, and
// stays linear in their number (each file's lines are indexed once).
func TestRenderCapsAndCounts(t *testing.T) {
	var src strings.Builder
	var ds Diagnostics
	for i := 1; i <= 100000; i++ {
		fmt.Fprintf(&src, "line %d\n", i)
		sev := Error
		if i%10 == 0 {
			sev = Warning
		}
		ds = append(ds, Diagnostic{Severity: sev, Summary: "s", Subject: &Range{Filename: "f", Start: Pos{Line: i, Column: 1}}})
	}
	var b strings.Builder
	if err := Render(&b, ds, map[string][]byte{"f": []byte(src.String())}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "Error: s\n") + strings.Count(out, "Warning: s\n"); n != MaxRendered {
		t.Errorf("%d diagnostics rendered, want %d", n, MaxRendered)
	}
	if !strings.HasSuffix(out, "\n\n… and 89955 more errors and 9995 more warnings, not shown (the JSON output lists every one).\n") {
		t.Errorf("last line: %q", out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:])
	}
}

// WriteJSON lists every diagnostic with its range and source line, and
// says whether the input is valid.
func TestWriteJSON(t *testing.T) {
	var b strings.Builder
	ds := Diagnostics{unknownField(), {Severity: Warning, Summary: "w", Path: "x"}}
	if err := WriteJSON(&b, ds, map[string][]byte{"cluster.yaml": []byte(src)}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion string `json:"format_version"`
		Valid         bool
		ErrorCount    int `json:"error_count"`
		WarningCount  int `json:"warning_count"`
		Diagnostics   []struct {
			Severity, Summary, Path, Snippet string
			Range                            *struct {
				Filename string
				Start    struct{ Line, Column, Byte int }
			}
		}
	}
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != "1" || doc.Valid || doc.ErrorCount != 1 || doc.WarningCount != 1 || len(doc.Diagnostics) != 2 {
		t.Fatalf("%+v", doc)
	}
	d := doc.Diagnostics[0]
	if d.Severity != "error" || d.Range == nil || d.Range.Filename != "cluster.yaml" || d.Range.Start.Line != 4 || d.Range.Start.Column != 5 || d.Snippet != "    adress: 10.0.0.12" {
		t.Errorf("%+v", d)
	}
	if doc.Diagnostics[1].Range != nil || doc.Diagnostics[1].Path != "x" {
		t.Errorf("%+v", doc.Diagnostics[1])
	}
}

// The JSON document carries DEL, C1 controls and bidirectional overrides
// as \u escapes, never raw (a CI log prints it), and decodes to the same
// text.
func TestWriteJSONEscapesWhatATerminalMustNotSee(t *testing.T) {
	src := "name: x\nevil\u202e\x7f\u0085é: 1\n"
	summary := "unknown field \"evil\u202e\x7f\u0085é\""
	d := Diagnostic{Severity: Error, Summary: summary,
		Subject: &Range{Filename: "f", Start: Pos{Line: 2, Column: 1, Byte: 8}, End: Pos{Line: 2, Column: 5, Byte: 12}}}
	var b strings.Builder
	if err := WriteJSON(&b, Diagnostics{d}, map[string][]byte{"f": []byte(src)}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\u202e\x7f\u0085") {
		t.Errorf("raw controls in the JSON:\n%q", out)
	}
	for _, want := range []string{`\u202e`, `\u007f`, `\u0085`, "é"} {
		if !strings.Contains(out, want) {
			t.Errorf("the JSON lacks %s:\n%s", want, out)
		}
	}
	var doc struct {
		Diagnostics []struct{ Summary, Snippet string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Diagnostics) != 1 || doc.Diagnostics[0].Summary != summary || doc.Diagnostics[0].Snippet != "evil\u202e\x7f\u0085é: 1" {
		t.Errorf("decoded %+v, want the same text", doc.Diagnostics)
	}
}
