package termsafe

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain é\ttab":      "plain é\ttab",
		"\x1b[31mred":       `\x1b[31mred`,
		"del\x7f c1\u0085":  `del\x7f c1\x85`,
		"rtl\u202eoverride": `rtl\u202eoverride`,
		"bad\xffbyte":       `bad\xffbyte`,
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
	}
}

// JSON escapes what encoding/json leaves raw, and the document decodes to
// the same value.
func TestJSON(t *testing.T) {
	v := map[string]string{"k": "a\u202eb\x7fc\u0085d\u2066é\x1b"}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(b)
	if strings.ContainsAny(string(got), "\u202e\x7f\u0085\u2066\x1b") {
		t.Errorf("raw controls left: %q", got)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back["k"] != v["k"] {
		t.Errorf("decoded %q, want %q", back["k"], v["k"])
	}
	clean := []byte(`{"k":"é and plain"}`)
	if out := JSON(clean); string(out) != string(clean) {
		t.Errorf("a clean document changed: %s", out)
	}
}
