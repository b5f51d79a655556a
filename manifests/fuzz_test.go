package manifests

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

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
		var c *Cluster
		var ds diag.Diagnostics
		withinLimits(t, src, func() { c, ds = testLoader().LoadBytes(name, src, "testdata/bad") })
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

// FuzzHostsFile feeds arbitrary bytes to the hosts file parser: it never
// panics, stays within the limits, and every diagnostic points into the
// file.
func FuzzHostsFile(f *testing.F) {
	f.Add([]byte("h1 10.0.0.1\n10.0.0.2\n# comment\nh3 10.0.0.3 register=false environment=Prod label.zone=a\n"))
	f.Add([]byte("h1 10.0.0.1 label.=x agentIP=::1 register=maybe\n\x00\xff\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		var ds diag.Diagnostics
		withinLimits(t, src, func() { _, ds = parseHostsFile("hosts.txt", src) })
		for _, d := range ds {
			if d.Subject == nil || d.Subject.Filename != "hosts.txt" || d.Subject.Start.Line < 1 || d.Subject.Start.Column < 1 {
				t.Fatalf("diagnostic without a position in the file: %s", d.Compact())
			}
		}
		if err := diag.Render(io.Discard, ds, map[string][]byte{"hosts.txt": src}); err != nil {
			t.Fatal(err)
		}
	})
}

// Per input: at most fuzzMaxAlloc bytes allocated, and an answer within
// fuzzMaxWait (a hang detector, far above the milliseconds an input
// takes: not a measure of speed).
const (
	fuzzMaxAlloc = 200 << 20
	fuzzMaxWait  = 10 * time.Second
)

func withinLimits(t *testing.T, src []byte, load func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	go func() {
		defer close(done)
		load()
	}()
	select {
	case <-done:
	case <-time.After(fuzzMaxWait):
		t.Fatalf("no answer within %s for a %d-byte input", fuzzMaxWait, len(src))
	}
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > fuzzMaxAlloc {
		t.Fatalf("a %d-byte input allocated %d MB (limit %d MB)", len(src), a>>20, fuzzMaxAlloc>>20)
	}
}
