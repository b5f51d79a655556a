package lab

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFleetIP(t *testing.T) {
	for i, want := range map[int]string{1: "10.213.4.1", 254: "10.213.4.254", 255: "10.213.5.1", 1000: "10.213.7.238", MaxFleetHosts: "10.213.11.222"} {
		if got := FleetIP(i).String(); got != want {
			t.Errorf("FleetIP(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestFleetLayout(t *testing.T) {
	cs, err := FleetLayout(1001, 251)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 4 {
		t.Fatalf("got %d containers, want 4", len(cs))
	}
	seen := map[string]bool{}
	n := 0
	for k, c := range cs {
		if c.Name != ContainerName("fleet"+string(rune('1'+k))) {
			t.Errorf("container %d is %s", k, c.Name)
		}
		if !strings.HasPrefix(c.IP, "10.213.250.") {
			t.Errorf("container IP %s outside 10.213.250.0/24", c.IP)
		}
		for _, h := range c.Hosts {
			n++
			if seen[h.IP] || seen[h.Name] {
				t.Errorf("duplicate %s %s", h.Name, h.IP)
			}
			seen[h.IP], seen[h.Name] = true, true
			if h.Container != c.Name || h.Name != FleetName(n) || h.IP != FleetIP(n).String() {
				t.Errorf("host %d: %+v", n, h)
			}
		}
	}
	if n != 1001 || len(cs[3].Hosts) != 248 {
		t.Errorf("%d hosts, last container %d", n, len(cs[3].Hosts))
	}
	if got := cs[0].Hosts[0].RancherDir(); got != "/fleet/10.213.4.1/rancher" {
		t.Errorf("RancherDir = %s", got)
	}
	for _, bad := range []int{0, -1, MaxFleetHosts + 1} {
		if _, err := FleetLayout(bad, 0); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("FleetLayout(%d): %v", bad, err)
		}
	}
	if cs, _ := FleetLayout(10, 0); len(cs) != 1 {
		t.Errorf("default per container: %d containers", len(cs))
	}
}

func TestFleetRunArgs(t *testing.T) {
	cs, _ := FleetLayout(3, 2)
	args := fleetRunArgs(cs[0], "img:1")
	if !slices.Contains(args, LabelKey+"=1") || !slices.Contains(args, labelRole+"="+string(RoleFleet)) {
		t.Errorf("labels missing: %v", args)
	}
	if got := args[len(args)-2:]; !slices.Equal(got, []string{"10.213.4.1", "10.213.4.2"}) {
		t.Errorf("addresses %v", got)
	}
	i := slices.Index(args, "img:1")
	if i < 0 || args[i+1] != "-c" || args[i+2] != fleetScript {
		t.Errorf("command: %v", args[i:])
	}
	if fleetHash(cs[0], "img:1") == fleetHash(cs[1], "img:1") || fleetHash(cs[0], "img:1") == fleetHash(cs[0], "img:2") {
		t.Error("fleet hash does not follow addresses and image")
	}
}

func TestParseFleetKeys(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	hosts := []FleetHost{{Name: "f1", IP: "10.213.4.1"}, {Name: "f2", IP: "10.213.4.2"}}
	out := "10.213.4.2 " + key + " 10.213.4.2\n\n10.213.4.1 " + key + " c\n"
	lines, err := parseFleetKeys(out, hosts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.213.4.1 " + key, "10.213.4.2 " + key}
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
	if _, err := parseFleetKeys("10.213.4.1 "+key, hosts); err == nil || !strings.Contains(err.Error(), "f2") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := parseFleetKeys("10.213.4.1 ssh-ed25519 notbase64", hosts); err == nil {
		t.Error("malformed key accepted")
	}
}

func TestFleetOverlap(t *testing.T) {
	cs, _ := FleetLayout(10, 0)
	if err := fleetOverlap(Layout(Options{Nodes: 3, Hosts: 508}), cs); err != nil {
		t.Errorf("508 agents: %v", err)
	}
	if err := fleetOverlap(Layout(Options{Nodes: 3, Hosts: 509}), cs); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "h509") {
		t.Errorf("509 agents: %v", err)
	}
}
