package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
)

// manifestShape is the subset of the manifest contract the lab fills in.
type manifestShape struct {
	Name    string `yaml:"name"`
	Rancher struct {
		Image               string            `yaml:"image"`
		HostRegistrationURL string            `yaml:"hostRegistrationUrl"`
		Timeouts            map[string]string `yaml:"timeouts"`
		Certificate         any               `yaml:"certificate"`
	} `yaml:"rancher"`
	SSH      map[string]any `yaml:"ssh"`
	Database struct {
		Host     string            `yaml:"host"`
		Port     int               `yaml:"port"`
		Name     string            `yaml:"name"`
		User     string            `yaml:"user"`
		Password map[string]string `yaml:"password"`
		Admin    struct {
			User     string            `yaml:"user"`
			Password map[string]string `yaml:"password"`
		} `yaml:"admin"`
	} `yaml:"database"`
	LoadBalancer struct {
		Address string            `yaml:"address"`
		HAProxy map[string]string `yaml:"haproxy"`
	} `yaml:"loadBalancer"`
	Nodes []map[string]string `yaml:"nodes"`
	Hosts []map[string]string `yaml:"hosts"`
}

func TestRenderManifest(t *testing.T) {
	var m manifestShape
	if err := yaml.Unmarshal(RenderManifest(Layout(Options{Nodes: 3, Spares: 2, Hosts: 2})), &m); err != nil {
		t.Fatalf("rendered manifest is not YAML: %v", err)
	}
	if m.Name != "lab" || m.Rancher.Image != "rancher/server:v1.0.1" || m.Rancher.HostRegistrationURL != "https://10.213.0.4" {
		t.Errorf("rancher block = %+v", m.Rancher)
	}
	if m.Rancher.Certificate != nil {
		t.Error("lab manifest must use the self-signed CA (no certificate block)")
	}
	if diff := cmp.Diff(map[string]string{"bootstrap": "10m", "clusterFormation": "5m"}, m.Rancher.Timeouts); diff != "" {
		t.Errorf("timeouts (-want +got):\n%s", diff)
	}
	wantSSH := map[string]any{"user": "root", "port": uint64(22), "identityFile": "ssh/id_ed25519",
		"knownHostsFile": "ssh/known_hosts", "hostKeyPolicy": "strict"}
	if diff := cmp.Diff(wantSSH, m.SSH); diff != "" {
		t.Errorf("ssh (-want +got):\n%s", diff)
	}
	db := m.Database
	if db.Host != "10.213.0.3" || db.Port != 3306 || db.Name != "cattle" || db.User != "cattle" ||
		db.Password["file"] != "secrets/db-password" || db.Admin.User != "root" ||
		db.Admin.Password["file"] != "secrets/db-admin-password" {
		t.Errorf("database = %+v", db)
	}
	wantLB := map[string]string{"configPath": "/etc/haproxy/haproxy.cfg",
		"reloadCommand": "service haproxy reload || service haproxy start"}
	if m.LoadBalancer.Address != "10.213.0.4" || cmp.Diff(wantLB, m.LoadBalancer.HAProxy) != "" {
		t.Errorf("loadBalancer = %+v", m.LoadBalancer)
	}
	wantNodes := []map[string]string{{"name": "rs1", "address": "10.213.1.1"},
		{"name": "rs2", "address": "10.213.1.2"}, {"name": "rs3", "address": "10.213.1.3"}}
	if diff := cmp.Diff(wantNodes, m.Nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	wantHosts := []map[string]string{{"name": "h1", "address": "10.213.2.1"}, {"name": "h2", "address": "10.213.2.2"}}
	if diff := cmp.Diff(wantHosts, m.Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

// The rendered manifest uses only keys that the contract example uses.
func TestRenderManifestKeysInContract(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "examples", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		if k := yamlKey(line); k != "" {
			known[k] = true
		}
	}
	for _, line := range strings.Split(string(RenderManifest(Layout(Options{Nodes: 1}))), "\n") {
		if k := yamlKey(line); k != "" && !known[k] {
			t.Errorf("key %q is not in examples/cluster.yaml", k)
		}
	}
}

func yamlKey(line string) string {
	s := strings.TrimLeft(strings.TrimSpace(line), "- ")
	if strings.HasPrefix(s, "#") {
		return ""
	}
	k, _, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(k, " {/") {
		return ""
	}
	return k
}

func TestRenderManifestNoHosts(t *testing.T) {
	var m manifestShape
	if err := yaml.Unmarshal(RenderManifest(Layout(Options{Nodes: 1})), &m); err != nil {
		t.Fatalf("rendered manifest is not YAML: %v", err)
	}
	if len(m.Nodes) != 1 || len(m.Hosts) != 0 {
		t.Errorf("nodes %v hosts %v, want 1 node and no hosts", m.Nodes, m.Hosts)
	}
}

// The spares join at the end of the nodes list; the hosts stay hosts.
func TestWithNodes(t *testing.T) {
	hosts := Layout(Options{Nodes: 3, Spares: 2, Hosts: 2})
	var spares []Host
	for _, h := range hosts {
		if h.Role == RoleSpare {
			spares = append(spares, h)
		}
	}
	out, err := WithNodes(string(RenderManifest(hosts)), spares...)
	if err != nil {
		t.Fatal(err)
	}
	var m manifestShape
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("WithNodes' manifest is not YAML: %v\n%s", err, out)
	}
	var names []string
	for _, n := range m.Nodes {
		names = append(names, n["name"]+"="+n["address"])
	}
	if want := "rs1=10.213.1.1 rs2=10.213.1.2 rs3=10.213.1.3 rs4=10.213.1.4 rs5=10.213.1.5"; strings.Join(names, " ") != want {
		t.Errorf("nodes = %v, want %s", names, want)
	}
	if len(m.Hosts) != 2 || m.Name != "lab" {
		t.Errorf("hosts %v, name %q: want h1, h2 and lab, untouched", m.Hosts, m.Name)
	}
	if _, err := WithNodes("name: x\nhosts: []\n", spares...); err == nil {
		t.Error("WithNodes of a manifest without a nodes list: no error")
	}
}

// WithHosts replaces the hosts list, with some or with none.
func TestWithHosts(t *testing.T) {
	hosts := Layout(Options{Nodes: 3, Hosts: 3})
	src := string(RenderManifest(hosts))
	var agents []Host
	for _, h := range hosts {
		if h.Role == RoleAgent {
			agents = append(agents, h)
		}
	}
	for _, keep := range [][]Host{nil, agents[:1], agents} {
		out, err := WithHosts(src, keep)
		if err != nil {
			t.Fatal(err)
		}
		var m manifestShape
		if err := yaml.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("WithHosts' manifest is not YAML: %v\n%s", err, out)
		}
		if len(m.Hosts) != len(keep) || len(m.Nodes) != 3 {
			t.Errorf("WithHosts(%d hosts): %d hosts, %d nodes:\n%s", len(keep), len(m.Hosts), len(m.Nodes), out)
		}
		for i, h := range keep {
			if m.Hosts[i]["name"] != h.Name || m.Hosts[i]["address"] != h.IP {
				t.Errorf("host %d = %v, want %s at %s", i, m.Hosts[i], h.Name, h.IP)
			}
		}
		if again, _ := WithHosts(out, keep); again != out {
			t.Errorf("WithHosts is not stable:\n%s\n---\n%s", out, again)
		}
	}
}
