package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain makes the test corpus's secret files private, as a user keeps
// theirs: git records no modes but the executable bit, so a clone has
// them 0644, which validation warns about.
func TestMain(m *testing.M) {
	files, _ := filepath.Glob("testdata/*/secrets/*")
	keys, _ := filepath.Glob("testdata/*/tls/*key*")
	files = append(files, keys...)
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
