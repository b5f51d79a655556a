package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/haplan/haplan/diag"
)

// valid is a manifest without errors under testLoader.
const valid = `name: lab
database:
  host: 10.0.0.20
  password: {env: HAPLAN_DB_PASSWORD}
  admin: {user: root, password: {env: HAPLAN_DB_PASSWORD}}
loadBalancer: {address: 10.0.0.10}
nodes:
  - {name: rs1, address: 10.0.0.11}
`

// Hostile input is answered with one clear error, found before a parser
// could blow up on it (each case took minutes or gigabytes before the
// pre-scans and limits).
func TestHostileInput(t *testing.T) {
	rep := strings.Repeat
	var keys, hosts strings.Builder
	for i := range 50000 {
		fmt.Fprintf(&keys, "k%d: 1\n", i)
	}
	for i := range 20001 {
		fmt.Fprintf(&hosts, "  - h%d\n", i)
	}
	tests := []struct {
		name, file, src, want string
	}{
		{"deep flow YAML", "c.yaml", "name: x\nnodes: " + rep("[", 40000) + rep("]", 40000) + "\n", "c.yaml:2:71: error: nesting deeper than 64 levels"},
		{"deep block YAML", "c.yaml", "nodes:\n" + rep("- ", 5000) + "x\n", "error: nesting deeper than 64 levels"},
		{"50,000 keys", "c.yaml", "name: x\n" + keys.String(), "c.yaml:1001:1: error: a mapping with more than 1000 keys"},
		{"200,000 flow items", "c.yaml", "nodes: [" + rep("1, ", 200000) + "1]\n", "error: a list or mapping with more than 20000 items"},
		{"20,001 block items", "c.yaml", "hosts:\n" + hosts.String(), "c.yaml:20002:3: error: a list with more than 20000 items"},
		{"a stray quote does not hide the rest", "c.yaml", "a: b 'c\n" + keys.String(), "error: a mapping with more than 1000 keys"},
		{"tab after a dash", "c.yaml", "nodes:\n" + rep("-\t", 5000) + "x\n", "error: nesting deeper than 64 levels"},
		{"mappings on one line", "c.yaml", "a: " + rep("b: ", 300000) + "\n", "error: nesting deeper than 64 levels"},
		{"HCL sign chain", "c.hcl", "x = " + rep("-", 400000) + "1\n", "error: a '-' that is not the sign of a number"},
		{"HCL splat chain", "c.hcl", "x = a" + rep("[*]", 100000) + "\n", `error: the operator "*" is not supported`},
		{"HCL 100,000 blocks", "c.hcl", rep("node {}\n", 100000), "error: more than 20000 blocks"},
		{"19,000 wrong items on one non-ASCII line", "c.yaml", "name: \"\u00e9\"\nnodes: [" + strings.TrimSuffix(rep("\"\u00e9x\", ", 19000), ", ") + "]\n", "error: "},
		{"HCL for expressions", "c.hcl", "name = \"x\"\nnodes = " + rep("[for a in ", 6) + "[1,2,3]" + rep(": a]", 6) + "\n", "c.hcl:2:9: error: only literal values are allowed"},
		{"HCL template directive", "c.hcl", "name = \"%{for a in [1,2]}${a}%{endfor}\"\n", "c.hcl:1:9: error: template interpolations and directives are not supported"},
		{"HCL interpolation", "c.hcl", "name = \"${file(\"/etc/passwd\")}\"\n", "c.hcl:1:9: error: template interpolations and directives are not supported"},
		{"HCL function call", "c.hcl", "name = upper(\"x\")\n", "c.hcl:1:8: error: only literal values are allowed"},
		{"HCL huge exponent", "c.hcl", "x = 1e100000000\n", "c.hcl:1:5: error: the number 1e100000000 is out of range"},
		{"HCL deep brackets", "c.hcl", "x = " + rep("[", 1000) + rep("]", 1000) + "\n", "c.hcl:1:69: error: nesting deeper than 64 levels"},
		{"empty", "c.yaml", "", "c.yaml:1:1: error: the manifest is empty"},
		{"comments only", "c.hcl", "# nothing\n// here\n\n", "c.hcl:1:1: error: the manifest is empty"},
		{"UTF-16", "c.yaml", "\xff\xfen\x00a\x00", "c.yaml:1:1: error: the manifest is UTF-16 text"},
		{"UTF-16 without a mark", "c.yaml", "n\x00a\x00m\x00e\x00", "c.yaml:1:1: error: the manifest is UTF-16 or UTF-32 text"},
		{"binary", "c.yaml", "name: x\nab\x00cd\n", "c.yaml:2:3: error: the manifest is not text: a NUL byte at line 2, column 3"},
		{"Latin-1", "c.yaml", "name: caf\xe9\n", "c.yaml:1:10: error: the manifest is not UTF-8: byte 0xe9 at line 1, column 10"},
		{"YAML 1.1 octal", "c.yaml", strings.Replace(valid, "{name: rs1,", "{name: rs1, ssh: {port: 022},", 1), "error: the number 022 is ambiguous"},
		{"hexadecimal", "c.yaml", strings.Replace(valid, "{name: rs1,", "{name: rs1, ssh: {port: 0x16},", 1), "error: the number 0x16 is ambiguous"},
		{"look-alike key", "c.yaml", strings.Replace(valid, "{name: rs1, address:", "{name: rs1, \u0430ddress:", 1), `error: unknown field "\u0430ddress" (the name has characters that are not ASCII`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := testLoader().LoadBytes(tt.file, []byte(tt.src), t.TempDir())
			if len(ds) == 0 {
				t.Fatal("no diagnostics")
			}
			if got := ds[0].Compact(); !strings.Contains(got, tt.want) {
				t.Errorf("first diagnostic %q, want one containing %q (of %d)", got, tt.want, len(ds))
			}
			// What the pre-scans and the text check refuse is never
			// parsed: one error, not a cascade.
			if parsed := strings.HasPrefix(tt.want, "error:") || strings.Contains(tt.want, "only literal"); !parsed && len(ds) != 1 {
				t.Errorf("%d diagnostics, want one: %v", len(ds), ds)
			}
		})
	}
}

// What the pre-scans refuse is never what a manifest needs: a UTF-8 byte
// order mark, 20,000 inline hosts, block scalars, quoted brackets and
// comments pass.
func TestPrescanAcceptsRealManifests(t *testing.T) {
	var hosts strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&hosts, "  - name: h%d\n    address: 10.1.%d.%d\n", i, i/250, i%250+1)
	}
	for name, src := range map[string]string{
		"BOM":          "\xef\xbb\xbf" + valid,
		"20,000 hosts": valid + "hosts:\n" + hosts.String(),
		"brackets":     valid + "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nhostDefaults:\n  labels: {note: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}\n",
		"block scalar": strings.Replace(valid, "name: lab\n", "name: lab\nrancher:\n  certificate:\n    cert: |\n      [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n      - - - - - -\n    key: {env: HAPLAN_DB_PASSWORD}\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, ds := testLoader().LoadBytes("c.yaml", []byte(src), t.TempDir())
			for _, d := range ds {
				if strings.Contains(d.Summary, "nesting") || strings.Contains(d.Summary, "more than") || strings.Contains(d.Summary, "\ufeff") || strings.Contains(d.Summary, "not text") {
					t.Errorf("refused: %s", d.Compact())
				}
			}
		})
	}
}

// Load reads only regular files, and at most maxManifest bytes: a FIFO
// would block for ever, /dev/zero never end.
func TestLoadRefusesWhatIsNotAManifestFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("name: x\n"+strings.Repeat("# padding\n", maxManifest/10+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "cannot read manifest: not a regular file",
		"/dev/zero": "cannot read manifest: not a regular file",
		big:         "cannot read manifest: larger than 1 MiB",
		dir:         "cannot read manifest: not a regular file",
	} {
		_, ds := testLoader().Load(path)
		if len(ds) != 1 || ds[0].Severity != diag.Error || !strings.Contains(ds[0].Summary, want) {
			t.Errorf("%s: %v, want %q", path, ds, want)
		}
	}
}

// Values that would silently mean something else are refused, and a
// password in a URL is never echoed.
func TestValuesThatMeanSomethingElse(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"node named lb", strings.Replace(valid, "{name: rs1,", "{name: lb,", 1), `error: node name "lb" is reserved`},
		{"host named lb", valid + "hosts:\n  - {name: lb, address: 10.0.1.1}\n", `error: host name "lb" is reserved`},
		{"an address given as a URL", strings.Replace(valid, "loadBalancer: {address: 10.0.0.10}", "loadBalancer: {address: \"https://10.0.0.10\"}", 1), `error: loadBalancer.address: "https://10.0.0.10" is not an IP address or host name`},
		{"password in the URL", valid + "rancher: {hostRegistrationUrl: \"https://admin:s3cret@rancher.example.com\"}\n", `"https://admin:xxxxx@rancher.example.com" must not have a path, query or user`},
		{"1ns", valid + "rancher: {timeouts: {command: 1ns}}\n", "error: rancher.timeouts.command 1ns is shorter than 1s"},
		{"shell in the image", valid + "rancher: {image: \"rancher/server:v1.0.1; rm -rf /\"}\n", `error: rancher.image "rancher/server:v1.0.1; rm -rf /" is not an image reference`},
		{"line break in a value", strings.Replace(valid, "loadBalancer: {address: 10.0.0.10}", "loadBalancer: {address: 10.0.0.10, haproxy: {reloadCommand: \"service haproxy reload\\nrm -rf /\"}}", 1), "error: a value holds a line break"},
		{"line break in a block scalar", valid + "hostDefaults:\n  labels:\n    note: |\n      two\n      lines\n", "error: a value holds a line break"},
		{"upper-case image", valid + "rancher: {agentImage: \"rancher/Agent:v1.0.1\"}\n", `error: rancher.agentImage "rancher/Agent:v1.0.1" is not an image reference`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := testLoader().LoadBytes("c.yaml", []byte(tt.src), t.TempDir())
			var all []string
			for _, d := range ds {
				all = append(all, d.Compact())
				if strings.Contains(d.Compact(), "s3cret") {
					t.Errorf("the password is echoed: %s", d.Compact())
				}
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Errorf("diagnostics:\n%s\nwant one containing %q", strings.Join(all, "\n"), tt.want)
			}
			if !strings.Contains(tt.src, "hostRegistrationUrl") && strings.Contains(strings.Join(all, "\n"), "hostRegistrationUrl") {
				t.Errorf("an error about a field the manifest does not write:\n%s", strings.Join(all, "\n"))
			}
		})
	}
	for _, ok := range []string{"rancher/server:v1.0.1", "10.213.0.2:5000/rancher/server:v1.0.2", "localhost:5000/a/b_c.d-e:tag_1.2-x",
		"rancher/server@sha256:" + strings.Repeat("a", 64)} {
		if !validImageRef(ok) {
			t.Errorf("%s refused", ok)
		}
	}
}

// A password equal to a name the manifest shows is warned about.
func TestPasswordThatIsAName(t *testing.T) {
	l := testLoader()
	l.LookupEnv = func(name string) (string, bool) { return "cattle", true }
	_, ds := l.LoadBytes("c.yaml", []byte(valid), t.TempDir())
	var got []string
	for _, d := range ds {
		got = append(got, d.Compact())
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, "warning: database.password is the same as database.user") || !strings.Contains(all, "warning: database.admin.password is the same as database.user") {
		t.Errorf("diagnostics:\n%s", all)
	}
}
