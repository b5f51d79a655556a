package lab

import (
	"errors"
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
	got := Layout(Options{Nodes: 3, Hosts: 2})
	want := []Host{
		{Name: "registry", Role: RoleRegistry, IP: "10.213.0.2", Container: "haplan-lab-registry"},
		{Name: "db", Role: RoleDB, IP: "10.213.0.3", Container: "haplan-lab-db"},
		{Name: "lb", Role: RoleLB, IP: "10.213.0.4", Container: "haplan-lab-lb"},
		{Name: "rs1", Role: RoleNode, IP: "10.213.1.1", Container: "haplan-lab-rs1"},
		{Name: "rs2", Role: RoleNode, IP: "10.213.1.2", Container: "haplan-lab-rs2"},
		{Name: "rs3", Role: RoleNode, IP: "10.213.1.3", Container: "haplan-lab-rs3"},
		{Name: "h1", Role: RoleAgent, IP: "10.213.2.1", Container: "haplan-lab-h1"},
		{Name: "h2", Role: RoleAgent, IP: "10.213.2.2", Container: "haplan-lab-h2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Layout (-want +got):\n%s", diff)
	}
}

func TestLayoutAddressesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, h := range Layout(Options{Nodes: 5, Hosts: maxAgentHosts}) {
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
	if contains(runArgs(agent, "img:1"), "SYS_ADMIN") {
		t.Error("agent hosts must run without extra capabilities")
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
