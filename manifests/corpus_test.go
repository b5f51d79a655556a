package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/diag"
)

// testEnv is the environment the corpus is loaded with: one secret set.
func testEnv(name string) (string, bool) {
	switch name {
	case "HAPLAN_DB_PASSWORD":
		return "db-pw-value", true
	case "RANCHER_ACCESS_KEY", "RANCHER_SECRET_KEY":
		return "api-key-value", true
	}
	return "", false
}

func testLoader() Loader { return Loader{LookupEnv: testEnv, HomeDir: testHome} }

// TestBadCorpus loads every manifest under testdata/bad and compares the
// compact diagnostics with the .want file next to it. Set
// HAPLAN_UPDATE_GOLDEN=1 to rewrite the .want files.
func TestBadCorpus(t *testing.T) {
	var files []string
	for _, pat := range []string{"testdata/bad/*.yaml", "testdata/bad/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("corpus has %d manifests, want at least 20", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, ds := testLoader().LoadBytes(filepath.Base(f), src, "testdata/bad")
			if !ds.HasErrors() && !strings.Contains(f, "warning") {
				t.Errorf("no errors for a bad manifest")
			}
			for _, d := range ds {
				if d.Subject == nil {
					t.Errorf("diagnostic without a position: %s", d.Compact())
				}
			}
			var b strings.Builder
			if err := diag.RenderCompact(&b, ds); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			for _, secret := range []string{"db-pw-value", "admin-pw", "hunter2", "inline-secret"} {
				if strings.Contains(got, secret) {
					t.Errorf("diagnostics leak secret %q:\n%s", secret, got)
				}
			}
			// The full rendering must work with the sources the loader kept.
			var full strings.Builder
			if err := diag.Render(&full, ds, c.Sources()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(full.String(), "^") {
				t.Errorf("rendering has no caret:\n%s", full.String())
			}
			wantFile := strings.TrimSuffix(f, filepath.Ext(f)) + filepath.Ext(f) + ".want"
			if os.Getenv("HAPLAN_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (set HAPLAN_UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
