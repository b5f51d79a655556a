package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ciManifest is a valid manifest whose secrets are not set where it is
// validated (a CI job without production secrets).
const ciManifest = `name: ci
database:
  host: 10.0.0.20
  password: {env: HAPLAN_TEST_NEVER_SET_PASSWORD}
  admin: {user: root, password: {file: secrets/absent}}
loadBalancer: {address: 10.0.0.10}
nodes:
  - {name: rs1, address: 10.0.0.11}
`

func writeManifest(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runReal(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// validate is the pull-request check: without the secrets it warns, and
// --strict makes them errors as plan and apply see them.
func TestValidateWithoutSecrets(t *testing.T) {
	p := writeManifest(t, ciManifest)
	code, out, errs := runReal("validate", "-f", p)
	if code != 0 || !strings.Contains(out, "is valid") || strings.Count(errs, "Warning: ") != 2 ||
		!strings.Contains(errs, "environment variable HAPLAN_TEST_NEVER_SET_PASSWORD is not set") || !strings.Contains(errs, "secrets/absent does not exist") {
		t.Errorf("validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, _, errs = runReal("validate", "--strict", "-f", p)
	if code != 1 || strings.Count(errs, "Error: ") != 2 {
		t.Errorf("validate --strict: exit %d, want 1 with two errors\n%s", code, errs)
	}
	// plan needs them: it refuses before connecting to anything.
	if code, _, errs := runReal("plan", "-f", p); code != 1 || !strings.Contains(errs, "Error: database.password: environment variable") {
		t.Errorf("plan: exit %d\n%s", code, errs)
	}
}

type diagDoc struct {
	FormatVersion string `json:"format_version"`
	Valid         bool   `json:"valid"`
	ErrorCount    int    `json:"error_count"`
	WarningCount  int    `json:"warning_count"`
	Diagnostics   []struct {
		Severity, Summary string
		Range             *struct{ Filename string }
	} `json:"diagnostics"`
}

func decodeDiagDoc(t *testing.T, out string) diagDoc {
	t.Helper()
	var d diagDoc
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", out)
	}
	return d
}

// validate --json, and plan/check --json on an invalid manifest, put the
// diagnostics on stdout as one document with a format_version.
func TestDiagnosticsAsJSON(t *testing.T) {
	good := writeManifest(t, ciManifest)
	code, out, errs := runReal("validate", "--json", "-f", good)
	d := decodeDiagDoc(t, out)
	if code != 0 || d.FormatVersion != "1" || !d.Valid || d.WarningCount != 2 || d.ErrorCount != 0 || errs != "" {
		t.Errorf("validate --json: exit %d %+v, stderr %q", code, d, errs)
	}
	bad := writeManifest(t, strings.Replace(ciManifest, "address: 10.0.0.11", "adress: 10.0.0.11", 1))
	for _, args := range [][]string{{"validate", "--json"}, {"plan", "--json"}, {"check", "--json"}, {"status", "--json"}} {
		code, out, _ := runReal(append(args, "-f", bad)...)
		d := decodeDiagDoc(t, out)
		if code != 1 || d.Valid || d.ErrorCount == 0 || d.Diagnostics[0].Range == nil || d.Diagnostics[0].Range.Filename != bad {
			t.Errorf("%v: exit %d %+v", args, code, d)
		}
	}
}

// -f - reads the manifest from standard input; a .json manifest is read
// as the YAML it is.
func TestManifestFromStdinAndJSON(t *testing.T) {
	var out, errb strings.Builder
	code := Run(context.Background(), []string{"validate", "-f", "-"}, strings.NewReader(ciManifest), &out, &errb)
	if code != 0 || out.String() != "The manifest on standard input is valid (cluster ci).\n" || !strings.Contains(errb.String(), "on <stdin> line 4") {
		t.Errorf("validate -f -: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	js := filepath.Join(t.TempDir(), "cluster.json")
	text := `{"name": "ci", "database": {"host": "10.0.0.20", "password": {"env": "HAPLAN_TEST_NEVER_SET_PASSWORD"},
 "admin": {"user": "root", "password": {"env": "HAPLAN_TEST_NEVER_SET_PASSWORD"}}},
 "loadBalancer": {"address": "10.0.0.10"}, "nodes": [{"name": "rs1", "address": "10.0.0.11"}]}`
	if err := os.WriteFile(js, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runReal("validate", "-f", js); code != 0 || !strings.Contains(out, "is valid (cluster ci)") {
		t.Errorf("validate cluster.json: exit %d\n%s\n%s", code, out, errs)
	}
}

// A password that is also the database user's name is not masked: masking
// it would turn every "cattle" into (sensitive), and so tell the reader
// the password. Another password is.
func TestRedactionSkipsAPasswordThatIsAName(t *testing.T) {
	p := writeManifest(t, strings.Replace(ciManifest, "{file: secrets/absent}", "{env: HAPLAN_TEST_ADMIN_PW}", 1))
	t.Setenv("HAPLAN_TEST_NEVER_SET_PASSWORD", "cattle")
	t.Setenv("HAPLAN_TEST_ADMIN_PW", "a-real-secret")
	m, err := loadManifest(p, loadOptions{Diags: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Secrets) != 1 || m.Secrets[0] != "a-real-secret" {
		t.Errorf("secrets to mask: %q, want only the admin password", m.Secrets)
	}
}

// init writes a manifest that validates, refuses to overwrite one, says
// which flag is missing without a terminal, and asks on one.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cluster.yaml")
	args := []string{"init", "--nodes", "10.0.0.11,10.0.0.12,rs9=10.0.0.13", "--hosts", "10.0.1.1", "--db-host", "10.0.0.20", "--lb", "10.0.0.10", "--haproxy", "--url", "https://rancher.example.com", "-o", p}
	if code, out, errs := runReal(args...); code != 0 || !strings.Contains(out, "Wrote "+p) {
		t.Fatalf("init: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := runReal("validate", "--json", "-f", p)
	d := decodeDiagDoc(t, out)
	if code != 0 || !d.Valid || d.ErrorCount != 0 || d.WarningCount != 2 { // the two unset passwords
		t.Errorf("validate the written manifest: exit %d %+v\n%s", code, d, errs)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{"  - {name: rs9, address: 10.0.0.13}", "  - {name: h1, address: 10.0.1.1}", "  haproxy:", "hostRegistrationUrl: https://rancher.example.com"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("manifest lacks %q:\n%s", want, b)
		}
	}
	if code, _, errs := runReal(args...); code != 1 || !strings.Contains(errs, "exists; --force overwrites it") {
		t.Errorf("second init: exit %d %s", code, errs)
	}
	if code, _, errs := runReal("init", "--nodes", "10.0.0.11", "-o", "-"); code != 1 || !strings.Contains(errs, "MySQL server address: give it as a flag") {
		t.Errorf("init without --db-host: exit %d %s", code, errs)
	}
	var outb, errb strings.Builder
	a := &app{stdin: strings.NewReader("lab\n10.0.0.11\n10.0.0.20\n10.0.0.10\n"), stdout: &outb, stderr: &errb, stdinTTY: true,
		getenv: func(string) string { return "" }, now: time.Now}
	if code := a.run(context.Background(), []string{"init", "-o", "-"}); code != 0 || !strings.Contains(errb.String(), "Cluster name [rancher]: ") || strings.Contains(outb.String(), "Cluster name") || !strings.HasPrefix(outb.String(), "# Written by 'haplan init'") || !strings.Contains(outb.String(), "name: lab\n") || !strings.Contains(outb.String(), "  - {name: rs1, address: 10.0.0.11}") {
		t.Errorf("init on a terminal: exit %d\n%s\n%s", code, outb.String(), errb.String())
	}
}
