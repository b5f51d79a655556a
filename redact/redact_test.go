package redact

import (
	"bytes"
	"testing"
)

func TestString(t *testing.T) {
	r := New("hunter2-secret", "hunter2-secret-longer", "", "ab", "pw-with-newline\n")
	tests := []struct{ name, in, want string }{
		{"plain", "password is hunter2-secret!", "password is (sensitive)!"},
		{"longest wins", "x hunter2-secret-longer y", "x (sensitive) y"},
		{"trimmed value", "got pw-with-newline in stderr", "got (sensitive) in stderr"},
		{"short values ignored", "ab cd", "ab cd"},
		{"nothing", "no secrets here", "no secrets here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var nilR *Redactor
	if got := nilR.String("hunter2-secret"); got != "hunter2-secret" {
		t.Errorf("nil redactor changed text: %q", got)
	}
}

func TestWriterSplitSecret(t *testing.T) {
	var out bytes.Buffer
	w := New("topsecretvalue").Writer(&out)
	for _, chunk := range []string{"line one top", "secretvalue end\nsecond ", "topsecretvalue"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "line one (sensitive) end\nsecond (sensitive)"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
