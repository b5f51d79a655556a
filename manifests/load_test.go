package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/haplan/haplan/diag"
)

// exampleDir copies examples/cluster.yaml (and testdata/good/cluster.hcl)
// into a temporary directory together with the files they reference.
func exampleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"tls/server-cert.pem":       testTLS.cert,
		"tls/server-key.pem":        testTLS.key,
		"tls/ca.crt":                testTLS.chain,
		"secrets/db-admin-password": "admin-secret-pw\n",
		"hosts.txt":                 "# extra hosts\n10.0.1.3\nh4 10.0.1.4 register=false environment=Staging label.zone=b # comment\n\n",
	}
	for _, src := range []string{"../examples/cluster.yaml", "testdata/good/cluster.hcl"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(src)] = string(b)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, l Loader, path string) *Cluster {
	t.Helper()
	c, ds := l.Load(path)
	if len(ds) > 0 {
		var b strings.Builder
		_ = diag.Render(&b, ds, c.Sources())
		t.Fatalf("Load(%s) diagnostics:\n%s", path, b.String())
	}
	return c
}

// ignoreLoadMeta compares what the manifest says, not where it was read.
func ignoreLoadMeta() cmp.Option {
	return cmpopts.IgnoreFields(Cluster{}, "Path", "Digest", "sources")
}

func TestLoadExample(t *testing.T) {
	dir := exampleDir(t)
	c := mustLoad(t, testLoader(), filepath.Join(dir, "cluster.yaml"))
	def := SSH{User: "root", Port: 22, IdentityFile: filepath.Join(testHome, ".ssh/id_ed25519"),
		KnownHostsFile: filepath.Join(testHome, ".ssh/known_hosts"), HostKeyPolicy: "strict",
		Explicit: SSHUser | SSHPort | SSHIdentityFile}
	port2222 := def
	port2222.Port = 2222
	want := &Cluster{
		Name: "prod-rancher",
		Rancher: Rancher{
			Image: "rancher/server:v1.0.1", AgentImage: "rancher/agent:v1.0.1", AgentInstanceImage: "rancher/agent-instance:v0.8.1", HostRegistrationURL: "https://rancher.example.com", BootstrapNode: "rs1",
			Certificate: &Certificate{
				Cert:  Secret{File: filepath.Join(dir, "tls/server-cert.pem")},
				Key:   Secret{File: filepath.Join(dir, "tls/server-key.pem")},
				Chain: Secret{File: filepath.Join(dir, "tls/ca.crt")},
			},
			APIKey:   &APIKey{AccessKey: Secret{Env: "RANCHER_ACCESS_KEY"}, SecretKey: Secret{Env: "RANCHER_SECRET_KEY"}},
			Timeouts: Timeouts{Bootstrap: 20 * time.Minute, ClusterFormation: 10 * time.Minute, SSH: 15 * time.Second, Command: 2 * time.Minute, Pull: 30 * time.Minute, Register: 5 * time.Minute},
		},
		Database: Database{Host: "10.0.0.20", Port: 3306, Name: "cattle", User: "cattle",
			Password: Secret{Env: "HAPLAN_DB_PASSWORD"},
			Admin:    DBAdmin{User: "root", Password: Secret{File: filepath.Join(dir, "secrets/db-admin-password")}}},
		LoadBalancer: LoadBalancer{Address: "10.0.0.10", HAProxy: &HAProxy{ConfigPath: "/etc/haproxy/haproxy.cfg",
			ReloadCommand: "service haproxy reload || service haproxy start", SSH: def}},
		Nodes: []Node{
			{Name: "rs1", Address: "10.0.0.11", ClusterIP: "10.0.0.11", SSH: def},
			{Name: "rs2", Address: "10.0.0.12", ClusterIP: "10.0.0.12", SSH: def},
			{Name: "rs3", Address: "10.0.0.13", ClusterIP: "10.0.0.13", SSH: port2222},
		},
		Hosts: []Host{
			{Name: "h1", Address: "10.0.1.1", SSH: def, Register: true, Environment: "Default", AgentIP: "10.0.1.1",
				Labels: map[string]string{"managed-by": "ops", "zone": "a"}},
			{Name: "10.0.1.2", Address: "10.0.1.2", SSH: def, Register: true, Environment: "Default", Labels: map[string]string{"managed-by": "ops"}},
			{Name: "10.0.1.3", Address: "10.0.1.3", SSH: def, Register: true, Environment: "Default", Labels: map[string]string{"managed-by": "ops"}},
			{Name: "h4", Address: "10.0.1.4", SSH: def, Register: false, Environment: "Staging", Labels: map[string]string{"managed-by": "ops", "zone": "b"}},
		},
		SSH: def,
		Dir: dir,
	}
	if diff := cmp.Diff(want, c, ignoreLoadMeta()); diff != "" {
		t.Errorf("example mismatch (-want +got):\n%s", diff)
	}
	if len(c.Digest) != 64 {
		t.Errorf("Digest = %q, want 64 hex digits", c.Digest)
	}
	src := c.Sources()
	if _, ok := src[filepath.Join(dir, "cluster.yaml")]; !ok {
		t.Errorf("Sources() lacks the manifest: %v", keys(src))
	}
	if _, ok := src[filepath.Join(dir, "hosts.txt")]; !ok {
		t.Errorf("Sources() lacks the hosts file: %v", keys(src))
	}

	// The HCL twin loads to the same cluster.
	h := mustLoad(t, testLoader(), filepath.Join(dir, "cluster.hcl"))
	if diff := cmp.Diff(c, h, ignoreLoadMeta()); diff != "" {
		t.Errorf("YAML and HCL differ (-yaml +hcl):\n%s", diff)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLoadMinimalDefaults(t *testing.T) {
	c := mustLoad(t, testLoader(), "testdata/good/minimal.yaml")
	dir, err := filepath.Abs("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	def := SSH{User: "root", Port: 22, IdentityFile: filepath.Join(testHome, ".ssh/id_ed25519"),
		KnownHostsFile: filepath.Join(testHome, ".ssh/known_hosts"), HostKeyPolicy: "strict"}
	want := &Cluster{
		Name: "lab",
		Rancher: Rancher{Image: "rancher/server:v1.0.1", AgentImage: DefaultAgentImage, AgentInstanceImage: DefaultAgentInstanceImage, HostRegistrationURL: "https://10.0.0.10", BootstrapNode: "rs1",
			Timeouts: Timeouts{Bootstrap: 20 * time.Minute, ClusterFormation: 10 * time.Minute, SSH: 15 * time.Second, Command: 2 * time.Minute, Pull: 30 * time.Minute, Register: 5 * time.Minute}},
		Database: Database{Host: "db.example.com", Port: 3306, Name: "cattle", User: "cattle",
			Password: Secret{Env: "HAPLAN_DB_PASSWORD"}, Admin: DBAdmin{User: "root", Password: Secret{Env: "HAPLAN_DB_PASSWORD"}}},
		LoadBalancer: LoadBalancer{Address: "10.0.0.10"},
		Nodes:        []Node{{Name: "rs1", Address: "10.0.0.11", ClusterIP: "10.0.0.11", SSH: def}},
		SSH:          def,
		Dir:          dir,
	}
	if diff := cmp.Diff(want, c, ignoreLoadMeta()); diff != "" {
		t.Errorf("minimal mismatch (-want +got):\n%s", diff)
	}
	if got, ok := c.Node("rs1"); !ok || got.Address != "10.0.0.11" {
		t.Errorf("Node(rs1) = %+v, %v", got, ok)
	}
	if _, ok := c.Node("rs9"); ok {
		t.Errorf("Node(rs9) found a node")
	}
}

func TestDigestCoversHostsFile(t *testing.T) {
	dir := exampleDir(t)
	path := filepath.Join(dir, "cluster.yaml")
	before := mustLoad(t, testLoader(), path).Digest
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), []byte("10.0.1.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	after := mustLoad(t, testLoader(), path).Digest
	if before == after {
		t.Errorf("digest did not change when hosts.txt changed")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		src  string
		want string // substring of the first diagnostic's compact form
	}{
		{"unknown extension", "cluster.toml", "{}", `error: cluster.toml: unknown manifest format ".toml"`},
		{"empty yaml", "c.yaml", "", "c.yaml:1:1: error: the manifest is empty"},
		{"top-level list", "c.yaml", "- a\n- b\n", "c.yaml:1:1: error: the manifest must be a mapping, not a list"},
		{"two documents", "c.yaml", "name: a\n---\nname: b\n", "c.yaml:3:1: error: more than one YAML document"},
		{"alias", "c.yaml", "name: &n lab\nhostsFile: *n\n", "c.yaml:2:12: error: YAML aliases are not supported"},
		{"duplicate key", "c.yaml", "name: a\nname: b\n", `c.yaml:2:1: error: YAML syntax error: mapping key "name" already defined`},
		{"hcl variable", "c.hcl", "name = var.x\n", "c.hcl:1:8: error: only literal values are allowed"},
		{"hcl case-insensitive suggestion", "c.hcl", "Name = \"x\"\n", `c.hcl:1:1: error: unknown field "Name" (did you mean "name"?)`},
		{"nested wrong kind", "c.yaml", "name: lab\nnodes: {rs1: 10.0.0.1}\n", "c.yaml:2:8: error: nodes must be a list, not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := testLoader().LoadBytes(tt.file, []byte(tt.src), t.TempDir())
			if !ds.HasErrors() {
				t.Fatalf("no errors")
			}
			if got := ds[0].Compact(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first diagnostic = %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	c, ds := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if c == nil || !ds.HasErrors() {
		t.Fatalf("Load of a missing file = %v, %v; want a cluster and an error", c, ds)
	}
	if !strings.Contains(ds[0].Summary, "no such file") {
		t.Errorf("summary = %q", ds[0].Summary)
	}
}

func TestHostsFileOptionErrors(t *testing.T) {
	dir := exampleDir(t)
	lines := "h5 10.0.1.5 register=maybe\nh6 10.0.1.6 enviroment=Prod\nh7 10.0.1.7 label.bad!key=x agentIP=10.0.1.7 agentIP=10.0.1.8\nregister=false\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ds := testLoader().Load(filepath.Join(dir, "cluster.yaml"))
	var got []string
	for _, d := range ds {
		got = append(got, strings.TrimPrefix(d.Compact(), dir+"/"))
	}
	help := ` (a line is "address" or "name address", then options: register=false, environment=NAME, agentIP=IP, label.KEY=VALUE. Start a comment with '#')`
	want := []string{
		`hosts.txt:4:1: error: hosts file line 4 has options but no address` + help,
		`hosts.txt:1:13: error: hosts file line 1: register must be true or false, not "maybe"` + help,
		`hosts.txt:2:13: error: hosts file line 2: unknown option "enviroment" (did you mean "environment"?)` + help,
		`hosts.txt:3:46: error: hosts file line 3: option "agentIP" given twice` + help,
		`hosts.txt:3:13: error: label key "bad!key" is not valid (a label key is letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
