package manifests

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/haplan/haplan/diag"
)

// FuzzLoad feeds arbitrary bytes to the YAML front end: loading never
// panics, and every error has a position inside a file the loader read.
func FuzzLoad(f *testing.F) { fuzzLoad(f, "fuzz.yaml") }

// FuzzLoadHCL is FuzzLoad for the HCL front end.
func FuzzLoadHCL(f *testing.F) { fuzzLoad(f, "fuzz.hcl") }

// fuzzLoad seeds with every manifest in the repository, whatever its
// format: YAML read as HCL (and back) makes good garbage.
func fuzzLoad(f *testing.F, name string) {
	var seeds []string
	for _, pat := range []string{"../examples/*.yaml", "testdata/good/*", "testdata/bad/*.yaml", "testdata/bad/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("nodes: [{name: a, ssh: {port: 99999999999999999999}}]\n"))
	f.Add([]byte("node \"a\" \"b\" { ssh { x = [1, {y = true}] } }\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, ds := testLoader().LoadBytes(name, src, "testdata/bad")
		if c == nil {
			t.Fatal("nil cluster")
		}
		sources := c.Sources()
		for _, d := range ds {
			if d.Severity != diag.Error {
				continue
			}
			if d.Subject == nil {
				t.Fatalf("error without a position: %s", d.Compact())
			}
			if _, ok := sources[d.Subject.Filename]; !ok {
				t.Fatalf("error in unknown file %q: %s", d.Subject.Filename, d.Compact())
			}
			if d.Subject.Start.Line < 1 || d.Subject.Start.Column < 1 {
				t.Fatalf("bad position: %s", d.Compact())
			}
		}
		if err := diag.Render(io.Discard, ds, sources); err != nil {
			t.Fatal(err)
		}
	})
}
