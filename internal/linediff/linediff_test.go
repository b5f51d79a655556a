package linediff

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnified(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	new := "a\nb\nC\nd\ne\nf\ng\nh\ni\nj\nk\n"
	got, ok := Unified(old, new, 1)
	want := []string{"@@ -2,3 +2,3 @@", " b", "-c", "+C", " d", "@@ -10,1 +10,2 @@", " j", "+k"}
	if !ok || !cmp.Equal(got, want) {
		t.Errorf("(-want +got):\n%s", cmp.Diff(want, got))
	}
	if got, ok := Unified(old, old, 3); !ok || got != nil {
		t.Errorf("equal texts: %v %v", got, ok)
	}
	got, _ = Unified("", "x\ny\n", 3)
	if !cmp.Equal(got, []string{"@@ -1,0 +1,2 @@", "+x", "+y"}) {
		t.Errorf("from nothing: %q", got)
	}
	if _, ok := Unified(strings.Repeat("x\n", MaxLines+1), "", 3); ok {
		t.Error("a file over MaxLines was diffed")
	}
}
