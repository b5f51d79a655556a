package manifests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// nearLimitManifest is a valid manifest just under maxManifest: thousands
// of inline hosts with labels, the largest thing a manifest is for.
func nearLimitManifest() []byte {
	var b strings.Builder
	b.WriteString(valid + "hosts:\n")
	for i := 0; b.Len() < maxManifest-200; i++ {
		fmt.Fprintf(&b, "  - name: h%d\n    address: 10.1%d.%d.%d\n    labels: {zone: z%d, rack: r%d, role: worker}\n", i, i>>16, (i>>8)&255, i&255, i%7, i%40)
	}
	return []byte(b.String())
}

// BenchmarkLoadNearLimit loads a manifest just under the size limit and,
// in the same run, has go-yaml alone unmarshal the same bytes into a map:
// the ratio is what haplan's front end (pre-scan, positions, decoding,
// validation) costs over the bare parser it uses.
func BenchmarkLoadNearLimit(b *testing.B) {
	src := nearLimitManifest()
	var peer time.Duration
	for range 3 {
		start := time.Now()
		var m map[string]any
		if err := yaml.Unmarshal(src, &m); err != nil {
			b.Fatal(err)
		}
		peer += time.Since(start)
	}
	peer /= 3
	b.ResetTimer()
	for b.Loop() {
		if _, ds := testLoader().LoadBytes("c.yaml", src, b.TempDir()); ds.HasErrors() {
			b.Fatal(ds.Err())
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(src))/1024, "KiB")
	b.ReportMetric(float64(per)/float64(peer), "x-yaml.Unmarshal")
}
