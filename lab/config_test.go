package lab

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAgentIP(t *testing.T) {
	tests := []struct {
		name string
		i    int
		want string
	}{
		{"first", 1, "10.213.2.1"},
		{"last of first block", 254, "10.213.2.254"},
		{"first of second block skips .0 and .255", 255, "10.213.3.1"},
		{"second of second block", 256, "10.213.3.2"},
		{"third block", 509, "10.213.4.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AgentIP(tt.i).String(); got != tt.want {
				t.Errorf("AgentIP(%d) = %s, want %s", tt.i, got, tt.want)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	got := Layout(Options{Nodes: 3, Spares: 2, Hosts: 2})
	want := []Host{
		{Name: "registry", Role: RoleRegistry, IP: "10.213.0.2", Container: "haplan-lab-registry"},
		{Name: "db", Role: RoleDB, IP: "10.213.0.3", Container: "haplan-lab-db"},
		{Name: "lb", Role: RoleLB, IP: "10.213.0.4", Container: "haplan-lab-lb"},
		{Name: "rs1", Role: RoleNode, IP: "10.213.1.1", Container: "haplan-lab-rs1"},
		{Name: "rs2", Role: RoleNode, IP: "10.213.1.2", Container: "haplan-lab-rs2"},
		{Name: "rs3", Role: RoleNode, IP: "10.213.1.3", Container: "haplan-lab-rs3"},
		{Name: "rs4", Role: RoleSpare, IP: "10.213.1.4", Container: "haplan-lab-rs4"},
		{Name: "rs5", Role: RoleSpare, IP: "10.213.1.5", Container: "haplan-lab-rs5"},
		{Name: "h1", Role: RoleAgent, IP: "10.213.2.1", Container: "haplan-lab-h1"},
		{Name: "h2", Role: RoleAgent, IP: "10.213.2.2", Container: "haplan-lab-h2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Layout (-want +got):\n%s", diff)
	}
}

func TestLayoutAddressesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, h := range Layout(Options{Nodes: 5, Spares: maxSpares, Hosts: maxAgentHosts}) {
		if other, ok := seen[h.IP]; ok {
			t.Fatalf("%s and %s share %s", other, h.Name, h.IP)
		}
		seen[h.IP] = h.Name
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
	}{
		{"default", Options{Nodes: 3, Hosts: 3}, false},
		{"single node, no hosts", Options{Nodes: 1}, false},
		{"five nodes, fifty hosts", Options{Nodes: 5, Hosts: 50}, false},
		{"even nodes", Options{Nodes: 2, Hosts: 3}, true},
		{"no nodes", Options{Nodes: 0}, true},
		{"negative hosts", Options{Nodes: 3, Hosts: -1}, true},
		{"too many hosts", Options{Nodes: 3, Hosts: maxAgentHosts + 1}, true},
		{"two spares", Options{Nodes: 3, Spares: 2, Hosts: 3}, false},
		{"negative spares", Options{Nodes: 3, Spares: -1}, true},
		{"too many spares", Options{Nodes: 3, Spares: maxSpares + 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("Validate() = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestRunArgs(t *testing.T) {
	hs := Layout(Options{Nodes: 1, Hosts: 1})
	node, _ := (&Lab{Hosts: hs}).Host("rs1")
	agent, _ := (&Lab{Hosts: hs}).Host("h1")
	nodeArgs := runArgs(node, "img:1")
	for _, want := range []string{"--cap-add", "SYS_ADMIN", "NET_ADMIN", "seccomp=unconfined", "apparmor=unconfined",
		"/sys/fs/cgroup:/sys/fs/cgroup:rw", "haplan-lab-rs1-docker:/var/lib/docker", "http://10.213.0.2:5000", "10.213.0.2:5000"} {
		if !contains(nodeArgs, want) {
			t.Errorf("node run args lack %q: %v", want, nodeArgs)
		}
	}
	for _, args := range [][]string{nodeArgs, runArgs(agent, "img:1")} {
		if contains(args, "--privileged") {
			t.Errorf("run args ask for --privileged, which fails on this machine: %v", args)
		}
		if !contains(args, LabelKey+"=1") {
			t.Errorf("run args lack the lab label: %v", args)
		}
	}
	// Agent hosts run dockerd like the nodes (the registration command
	// runs rancher/agent there), through the init script's node services.
	agentArgs := runArgs(agent, "img:1")
	for _, want := range []string{"SYS_ADMIN", "NET_ADMIN", "haplan-lab-h1-docker:/var/lib/docker", "http://10.213.0.2:5000"} {
		if !contains(agentArgs, want) {
			t.Errorf("agent run args lack %q: %v", want, agentArgs)
		}
	}
	i := slices.Index(agentArgs, "img:1")
	if want := []string{"node", "--registry-mirror", "http://10.213.0.2:5000", "--insecure-registry", "10.213.0.2:5000",
		"--add-runtime", "haplan=/usr/local/sbin/haplan-runc", "--default-runtime", "haplan"}; i < 0 || !cmp.Equal(agentArgs[i+1:], want) {
		t.Errorf("agent command = %v, want %v", agentArgs[i+1:], want)
	}
	lb, _ := (&Lab{Hosts: hs}).Host("lb")
	if contains(runArgs(lb, "img:1"), "SYS_ADMIN") {
		t.Error("the LB must run without extra capabilities")
	}
}

// Up recreates a host whose command line changed (the spec label); a host
// from before that label is current, but for agent hosts, which then ran
// no dockerd.
func TestUpToDate(t *testing.T) {
	hs := Layout(Options{Nodes: 1, Hosts: 1})
	info := func(args []string) containerInfo {
		var c containerInfo
		c.Config.Labels = map[string]string{}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--label" {
				k, v, _ := strings.Cut(args[i+1], "=")
				c.Config.Labels[k] = v
			}
		}
		return c
	}
	for _, h := range hs {
		c := info(runArgs(h, "img:1"))
		if !upToDate(c, h, "img:1") {
			t.Errorf("%s: its own args are not up to date", h.Name)
		}
		if upToDate(c, h, "img:2") {
			t.Errorf("%s: another image is up to date", h.Name)
		}
		c.Config.Labels[labelSpec] = "000000000000"
		if upToDate(c, h, "img:1") {
			t.Errorf("%s: another spec is up to date", h.Name)
		}
		delete(c.Config.Labels, labelSpec)
		if got, want := upToDate(c, h, "img:1"), h.Role != RoleAgent; got != want {
			t.Errorf("%s without a spec label: up to date %t, want %t", h.Name, got, want)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// The runc wrapper drops exactly the capabilities its bounding set lacks
// from config.json and leaves the rest.
func TestRuncWrapper(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(runcWrapperTar()))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "haplan-runc" || hdr.Mode != 0o755 {
		t.Fatalf("tar: %+v %v", hdr, err)
	}
	body, _ := io.ReadAll(tr)
	if string(body) != runcWrapper {
		t.Fatal("tar content differs")
	}
	names := strings.Fields("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE " +
		"NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT " +
		"SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE " +
		"AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ " +
		"PERFMON BPF CHECKPOINT_RESTORE")
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	var bnd uint64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			bnd, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	var all, want []string
	for i, n := range names {
		all = append(all, `"CAP_`+n+`"`)
		if bnd>>i&1 == 1 {
			want = append(want, `"CAP_`+n+`"`)
		}
	}
	dir := t.TempDir()
	caps := "[" + strings.Join(all, ",") + "]"
	cfg := `{"process":{"capabilities":{"bounding":` + caps + `,"effective":` + caps + `}},"root":{"path":"rootfs"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.Replace(runcWrapper, `exec /usr/sbin/runc "$@"`, `exit 0`, 1)
	if out, err := exec.Command("sh", "-c", script, "haplan-runc", "--root", "/r", "create", "--bundle", dir, "id").CombinedOutput(); err != nil {
		t.Fatalf("wrapper: %v %s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	kept := "[" + strings.Join(want, ",") + "]"
	if wantCfg := `{"process":{"capabilities":{"bounding":` + kept + `,"effective":` + kept + `}},"root":{"path":"rootfs"}}`; string(got) != wantCfg {
		t.Errorf("config.json =\n%s\nwant\n%s", got, wantCfg)
	}
}
