package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// baseManifest is valid; each case edits it.
const baseManifest = `name: lab
database:
  host: 10.0.0.20
  password: {env: HAPLAN_DB_PASSWORD}
  admin:
    user: root
    password: {file: admin-pw}
loadBalancer:
  address: 10.0.0.10
nodes:
  - name: rs1
    address: 10.0.0.11
  - name: rs2
    address: 10.0.0.12
  - name: rs3
    address: 10.0.0.13
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string // compact diagnostics, in order
	}{
		{"valid", func(s string) string { return s }, nil},
		{"CRLF line breaks (Windows editors)", func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }, nil},
		// A quoted scalar folded across lines is one line with a space
		// (YAML 1.2, 7.3.1), with CRLF breaks as with LF ones; the
		// positions are the file's.
		{"a quoted value folded across CRLF lines", func(s string) string {
			return strings.ReplaceAll(strings.Replace(s, "name: lab", "name: \"lab\n  cluster\"", 1), "\n", "\r\n")
		}, []string{`c.yaml:1:7: error: name "lab cluster" is not a DNS label (use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)`}},
		// An empty line in it is a line break, and refused, with CRLF too.
		{"an empty line in a quoted value across CRLF lines", func(s string) string {
			return strings.ReplaceAll(strings.Replace(s, "  - name: rs1\n", "  - name: \"rs1\n\n\"\n", 1), "\n", "\r\n")
		}, []string{`c.yaml:11:11: error: a value holds a line break (every value goes on one line: haplan puts values into commands, files and labels, where a line break starts something else. Certificates and keys are read from files ({file: PATH}))`,
			`c.yaml:11:11: error: node name "rs1\n" is not usable as an identifier (use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit)`}},
		{"five nodes", func(s string) string {
			return s + "  - name: rs4\n    address: 10.0.0.14\n  - name: rs5\n    address: 10.0.0.15\n"
		}, nil},
		{"four nodes", func(s string) string { return s + "  - name: rs4\n    address: 10.0.0.14\n" },
			[]string{"c.yaml:10:1: error: HA needs 1, 3 or 5 nodes (ZooKeeper quorum); got 4 (every Rancher HA node runs ZooKeeper, and 2 or 4 nodes tolerate no more failures than 1 or 3)"}},
		{"name not a DNS label", func(s string) string { return strings.Replace(s, "name: lab", "name: -lab", 1) },
			[]string{`c.yaml:1:7: error: name "-lab" is not a DNS label (use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)`}},
		{"image digest is a tag, but no release", func(s string) string {
			return "rancher:\n  image: reg:5000/rancher/server@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" + s
		},
			[]string{`c.yaml:2:10: warning: rancher.image "reg:5000/rancher/server@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" does not name a release (v1.0.x or v1.1.x) (haplan drives the HA of Rancher 1.0.x and 1.1.x (rancher-ha.sh); with a tag that names a release it also refuses a downgrade)`}},
		{"image registry port is no tag", func(s string) string { return "rancher:\n  image: reg:5000/rancher/server\n" + s },
			[]string{`c.yaml:2:10: error: rancher.image "reg:5000/rancher/server" has no tag (without a tag the generated script pulls :latest; write e.g. "rancher/server:v1.0.1")`}},
		{"url without host", func(s string) string { return "rancher:\n  hostRegistrationUrl: https://\n" + s },
			[]string{`c.yaml:2:24: error: rancher.hostRegistrationUrl "https://" has no host (write e.g. "https://rancher.example.com")`}},
		{"image registry", func(s string) string { return "rancher:\n  imageRegistry: registry.example.com:5000/mirror\n" + s }, nil},
		{"image registry with a registry-qualified image", func(s string) string {
			return "rancher:\n  imageRegistry: registry.example.com\n  image: quay.io/rancher/server:v1.0.1\n" + s
		}, []string{`c.yaml:3:10: error: rancher.image "quay.io/rancher/server:v1.0.1" names a registry or a digest, which rancher.imageRegistry cannot be combined with (with rancher.imageRegistry, write the image as name:tag (e.g. rancher/server:v1.0.1): haplan pulls it from the registry and tags it with that name)`}},
		{"image registry with a scheme", func(s string) string { return "rancher:\n  imageRegistry: https://registry.example.com\n" + s },
			[]string{`c.yaml:2:18: error: rancher.imageRegistry "https://registry.example.com" is not a registry name (write the registry's host, an optional port and an optional path, without a scheme, e.g. "registry.example.com:5000/mirror")`}},
		{"url with a slash", func(s string) string { return "rancher:\n  hostRegistrationUrl: https://lb.example.com/\n" + s }, nil},
		{"url with a port", func(s string) string { return "rancher:\n  hostRegistrationUrl: https://lb.example.com:8443\n" + s },
			[]string{`c.yaml:2:24: error: rancher.hostRegistrationUrl "https://lb.example.com:8443": a port in the registration URL is not supported (rancher v1.0.1 names its certificate after the URL's host and port together ("lb.example.com:8443"), which no client verifies, and its load balancer serves 443 only. Write the URL without a port and have the load balancer listen on 443)`}},
		{"unsafe database name", func(s string) string {
			return strings.Replace(s, "  host: 10.0.0.20\n", "  host: 10.0.0.20\n  name: 'my db'\n", 1)
		},
			[]string{`c.yaml:4:9: error: database.name "my db" holds characters the generated script cannot carry (rancher-ha.sh writes it unquoted into server.conf (cattle's script.ftl), so a space, $, quote or backtick breaks every node; use letters, digits, _, - and . only)`}},
		{"node ssh override", func(s string) string {
			return s + "    ssh: {hostKeyPolicy: accept-new, bastion: ops@jump.example.com:2200}\n"
		}, nil},
		{"bad bastion", func(s string) string { return s + "    ssh: {bastion: 'ops@:99999'}\n" },
			[]string{`c.yaml:17:20: error: nodes[2].ssh.bastion "ops@:99999" is not a valid jump host (write "user@host:port"; user and port are optional)`}},
		{"bad host key", func(s string) string { return s + "    ssh: {hostKey: not-a-key}\n" },
			[]string{`c.yaml:17:20: error: nodes[2].ssh.hostKey is not a public key (paste a line such as "ssh-ed25519 AAAA..." from ssh-keyscan)`}},
		{"duplicate host across inline and file", func(s string) string {
			return s + "hosts:\n  - address: 10.0.1.1\nhostsFile: hosts.txt\n"
		}, []string{`hosts.txt:2:1: error: duplicate host "10.0.1.1" (first defined as hosts[0].name at c.yaml:18:5)`}},
		{"rancher 1.2", func(s string) string { return "rancher: {image: 'rancher/server:v1.2.0'}\n" + s },
			[]string{`c.yaml:1:18: error: rancher.image "rancher/server:v1.2.0" is Rancher v1.2.0 (from Rancher 1.2 on, HA is another design (no rancher-ha.sh, --advertise-address, port 9345): going there is a migration, not an upgrade haplan can do. Use a 1.0.x or 1.1.x release)`}},
		{"a tag that is no release", func(s string) string { return "rancher: {image: 'rancher/server:stable'}\n" + s },
			[]string{`c.yaml:1:18: warning: rancher.image "rancher/server:stable" does not name a release (v1.0.x or v1.1.x) (haplan drives the HA of Rancher 1.0.x and 1.1.x (rancher-ha.sh); with a tag that names a release it also refuses a downgrade)`}},
		{"host with node address", func(s string) string { return s + "hosts:\n  - address: 10.0.0.11\n" },
			[]string{`c.yaml:18:14: error: host 10.0.0.11 has the address of node rs1 (an HA node runs its own agent for System HA; registering it as a host of an environment would replace that agent. Run applications on other machines, or set register: false to only give it the CA)`}},
		{"host with node address, CA only", func(s string) string { return s + "hosts:\n  - address: 10.0.0.11\n    register: false\n" },
			[]string{`c.yaml:18:14: warning: host 10.0.0.11 has the address of node rs1`}},
		{"host by name without an agentIP", func(s string) string { return s + "hosts:\n  - address: web1.example.com\n" },
			[]string{`c.yaml:18:14: warning: host web1.example.com is registered without an agentIP, and its address "web1.example.com" is a name (set agentIP to the address the host has in its network: the agent would otherwise register with the address the server sees, which behind the cluster's TCP load balancer is the balancer's, so every such host would get the same one)`}},
		{"host named like a node", func(s string) string { return s + "hosts:\n  - {name: rs1, address: 10.0.1.1}\n" },
			[]string{`c.yaml:18:12: error: host "rs1" has the name of a node (nodes and hosts share one namespace in plans and step addresses)`}},
		{"host in System HA", func(s string) string { return s + "hosts:\n  - {address: 10.0.1.1, environment: System HA}\n" },
			[]string{`c.yaml:18:38: error: host 10.0.1.1 cannot join "System HA" (system HA is the project of the HA nodes' own agents; hosts join an environment of yours (e.g. Default))`}},
		{"empty environment in the defaults", func(s string) string { return s + "hostDefaults: {environment: ''}\nhosts:\n  - {address: 10.0.1.1}\n" },
			[]string{`c.yaml:17:29: error: hosts[0].environment must not be empty (name an environment, or leave the field out for Default)`}},
		{"agent IPs", func(s string) string {
			return s + "hosts:\n  - {address: 10.0.1.1, agentIP: 10.9.0.1}\n  - {address: 10.0.1.2, agentIP: 10.9.0.1}\n  - {address: 10.0.1.3, agentIP: h3.example}\n"
		}, []string{
			`c.yaml:19:34: error: duplicate agent IP 10.9.0.1: two hosts would register as one address (first defined as hosts[0].agentIP at c.yaml:18:34)`,
			`c.yaml:20:34: error: hosts[2].agentIP: "h3.example" is not an IP address (CATTLE_AGENT_IP is an IP address)`,
		}},
		{"labels", func(s string) string {
			return s + "hosts:\n  - address: 10.0.1.1\n    labels: {'bad key': x, io.haplan.host: h, ok: 'a&b=c', fine: ok, n: 5}\n"
		}, []string{
			`c.yaml:19:73: error: hosts[0].labels.n must be a string, not an integer (quote the value to make it a string)`,
			`c.yaml:19:25: error: label key "bad key" is not valid (a label key is letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit)`,
			`c.yaml:19:44: error: label key "io.haplan.host" is reserved for haplan (haplan sets io.haplan.host itself, to the host's name, to find the hosts it registered)`,
			`c.yaml:19:51: error: label ok: value "a&b=c" is not valid (a label value has no blanks, quotes, '&', '=' or control characters (CATTLE_HOST_LABELS is k1=v1&k2=v2))`,
		}},
		{"database on a node", func(s string) string { return strings.Replace(s, "host: 10.0.0.20", "host: 10.0.0.12", 1) },
			[]string{`c.yaml:3:9: warning: database.host 10.0.0.12 is also node rs2 (nodes[1]): the database should outlive any one server`}},
		{"admin user missing", func(s string) string { return strings.Replace(s, "    user: root\n", "", 1) },
			[]string{`c.yaml:5:3: error: database.admin.user is required (the admin account creates the database, the user and the grants)`}},
		{"ipv6 load balancer with a DNS registration URL", func(s string) string {
			return "rancher:\n  hostRegistrationUrl: https://rancher.example.com\n" + strings.Replace(s, "address: 10.0.0.10", "address: 'fd00::10'", 1)
		}, nil},
		{"ipv6 load balancer as the registration URL", func(s string) string { return strings.Replace(s, "address: 10.0.0.10", "address: 'fd00::10'", 1) },
			[]string{`c.yaml:9:12: error: rancher.hostRegistrationUrl "https://[fd00::10]": an IPv6 literal in the registration URL is not supported (rancher v1.0.1 puts "[fd00::10]" into its certificate as a name, never as an IP address, so TLS cannot verify it. Set rancher.hostRegistrationUrl to https://<a DNS name that resolves to the load balancer>)`}},
		{"grant hosts", func(s string) string {
			return strings.Replace(s, "  host: 10.0.0.20\n", "  host: 10.0.0.20\n  grantHosts: ['10.0.0.%']\n", 1)
		}, nil},
		{"empty secret file warns", func(s string) string { return strings.Replace(s, "file: admin-pw", "file: empty", 1) },
			[]string{`c.yaml:7:22: warning: database.admin.password: empty is empty`}},
		{"secret file is a directory", func(s string) string { return strings.Replace(s, "file: admin-pw", "file: .", 1) },
			[]string{`c.yaml:7:22: error: database.admin.password: . is a directory`}},
		{"duplicate clusterIP", func(s string) string {
			return strings.Replace(strings.Replace(s, "address: 10.0.0.12\n", "address: 10.0.0.12\n    clusterIP: 192.168.0.1\n", 1),
				"address: 10.0.0.13\n", "address: 10.0.0.13\n    clusterIP: 192.168.0.1\n", 1)
		}, []string{`c.yaml:18:16: error: duplicate node clusterIP 192.168.0.1 (nodes[1] has the same clusterIP)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"admin-pw": "pw\n", "empty": "", "hosts.txt": "# h\n10.0.1.1\n"})
			_, ds := testLoader().LoadBytes("c.yaml", []byte(tt.edit(baseManifest)), dir)
			var got []string
			for _, d := range ds {
				got = append(got, d.Compact())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := objectKeys("cluster")
	tests := []struct {
		name, in, want string
	}{
		{"one typo", "nodse", "nodes"},
		{"case", "hostsfile", "hostsFile"},
		{"snake case", "load_balancer", "loadBalancer"},
		{"nothing close", "zookeeper", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := suggest(tt.in, keys); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestServerVersion(t *testing.T) {
	for img, want := range map[string]string{
		"rancher/server:v1.0.1": "v1.0.1", "10.0.0.2:5000/rancher/server:v1.1.4": "v1.1.4", "rancher/server:1.6.30": "v1.6.30",
		"rancher/server:latest": "", "rancher/server@sha256:abc": "", "rancher/server": "",
	} {
		v, ok := ServerVersion(img)
		if got := map[bool]string{true: v.String(), false: ""}[ok]; got != want {
			t.Errorf("ServerVersion(%q) = %q, want %q", img, got, want)
		}
	}
	if !(Version{1, 0, 1}).Less(Version{1, 0, 2}) || (Version{1, 1, 0}).Less(Version{1, 0, 9}) {
		t.Error("Less orders releases wrongly")
	}
}
