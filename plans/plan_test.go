package plans

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name    string
		changes []Change
		want    [3]int
		line    string
	}{
		{"empty", nil, [3]int{}, "No changes. The cluster matches the manifest."},
		{"noops and checks do not count", []Change{{Action: NoOp}, {Action: Create, Check: true}}, [3]int{}, "No changes. The cluster matches the manifest."},
		{"mixed", []Change{{Action: Create}, {Action: Create}, {Action: Update}, {Action: Replace}, {Action: Delete}}, [3]int{3, 1, 2}, "Plan: 3 to add, 1 to change, 2 to destroy."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Plan{Changes: tt.changes}
			a, c, d := p.Summary()
			if got := [3]int{a, c, d}; got != tt.want {
				t.Errorf("Summary() = %v, want %v", got, tt.want)
			}
			if got := p.SummaryLine(); got != tt.line {
				t.Errorf("SummaryLine() = %q, want %q", got, tt.line)
			}
			if p.HasChanges() != (tt.want != [3]int{}) {
				t.Errorf("HasChanges() = %v", p.HasChanges())
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	p := &Plan{
		Cluster:        "lab",
		ManifestDigest: "abc",
		Created:        time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC),
		Changes: []Change{
			{Addr: "image.pull[rs1]", Kind: "image.pull", Host: "rs1", Action: Create, Reason: "image missing"},
			{Addr: "db.grant[rs1]", Kind: "db.grant", Action: Update, Details: []Detail{{Name: "password", Old: "sha256:1", New: "sha256:2", Sensitive: true}}},
			{Addr: "ha.verify", Kind: "ha.verify", Action: Create, Check: true, Warnings: []string{"2/3 hosts active", "rs2 said: evil\u202e\x7f\u0085"}},
		},
		Probes: map[string]string{"image.pull[rs1]": "d1"},
	}
	var buf bytes.Buffer
	if err := Encode(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"action": "create"`) {
		t.Errorf("actions are not encoded by name:\n%s", buf.String())
	}
	if strings.ContainsAny(buf.String(), "\u202e\x7f\u0085") {
		t.Errorf("what a remote machine said is raw in the plan file (a terminal would act on it):\n%q", buf.String())
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, in string
		isVer    bool
	}{
		{"future version", `{"format_version":"9","changes":[],"probes":{}}`, true},
		{"missing version", `{"changes":[]}`, true},
		{"unknown field", `{"format_version":"1","extra":1}`, false},
		{"unknown action", `{"format_version":"1","changes":[{"address":"a","kind":"a","action":"explode"}]}`, false},
		{"garbage", `not json`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("Decode succeeded, want error")
			}
			if got := errors.Is(err, ErrFormatVersion); got != tt.isVer {
				t.Errorf("errors.Is(err, ErrFormatVersion) = %v, want %v (err: %v)", got, tt.isVer, err)
			}
		})
	}
}

func TestStale(t *testing.T) {
	saved := &Plan{Probes: map[string]string{"a": "1", "b": "2", "gone": "3"}}
	fresh := &Plan{Probes: map[string]string{"a": "1", "b": "changed", "new": "4"}}
	got := Stale(saved, fresh)
	want := []Drift{{Addr: "b", Was: "2", Now: "changed"}, {Addr: "gone", Was: "3"}, {Addr: "new", Now: "4"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stale (-want +got):\n%s", diff)
	}
	if n := len(Stale(saved, saved)); n != 0 {
		t.Errorf("a plan is stale against itself: %d drifts", n)
	}
}

func TestActionText(t *testing.T) {
	for a := NoOp; a <= Delete; a++ {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Action
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Errorf("%v: round trip gave %v, %v", a, back, err)
		}
	}
	if got := Kind("cert.distribute[h1]"); got != "cert.distribute" {
		t.Errorf("Kind = %q", got)
	}
}
