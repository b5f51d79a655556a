package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// The fleet: many light SSH hosts for benchmarks. A few containers of the
// host image each carry many addresses on the lab network and run one real
// OpenSSH sshd per address. Every sshd has its own ed25519 host key and its
// own mount namespace in which a private directory is bind-mounted over
// /var/lib/rancher, so every fleet host has its own ca.crt. Fleet
// containers carry the lab label (haplab down removes them) and the role
// "fleet", which `haplab up` never touches.
const (
	RoleFleet Role = "fleet"
	// MaxFleetHosts bounds the fleet: addresses 10.213.4.1 .. 10.213.11.x.
	MaxFleetHosts = 2000
	// DefaultFleetPerContainer is how many sshd one fleet container runs.
	DefaultFleetPerContainer = 250
	labelFleet               = "haplan.lab.fleet"
	fleetDirName             = "fleet"
	// FleetRoot is where, inside a fleet container, host ADDR keeps its
	// files: FleetRoot/ADDR/rancher is that host's /var/lib/rancher.
	FleetRoot = "/fleet"
)

// FleetHost is one SSH host of the fleet.
type FleetHost struct {
	Name      string `json:"name"`      // f1, f2, ...
	IP        string `json:"ip"`        // its own address on the lab network
	Container string `json:"container"` // the fleet container that runs its sshd
}

// RancherDir is the host's /var/lib/rancher, as seen from its container
// (outside the host's mount namespace).
func (h FleetHost) RancherDir() string { return FleetRoot + "/" + h.IP + "/rancher" }

// FleetContainer is one container of the fleet.
type FleetContainer struct {
	Name  string      `json:"name"`  // container name
	IP    string      `json:"ip"`    // its own (docker) address; no sshd there
	Hosts []FleetHost `json:"hosts"` // the sshd it runs
}

// Fleet is what fleet up wrote into lab/out/fleet/fleet.json.
type Fleet struct {
	Dir            string           `json:"dir"`
	KnownHostsFile string           `json:"knownHostsFile"`
	IdentityFile   string           `json:"identityFile"`
	Image          string           `json:"image"`
	Containers     []FleetContainer `json:"containers"`
	Hosts          []FleetHost      `json:"hosts"`
}

// FleetOptions selects the size of the fleet.
type FleetOptions struct {
	Hosts        int
	PerContainer int    // sshd per container; 0 means DefaultFleetPerContainer
	Dir          string // lab/out; empty means DefaultDir()
	Log          func(format string, args ...any)
}

// FleetName is the name of fleet host i (1-based).
func FleetName(i int) string { return "f" + strconv.Itoa(i) }

// FleetIP is the address of fleet host i (1-based): 10.213.4.1 ..
// 10.213.4.254, then 10.213.5.1 and on, skipping .0 and .255.
func FleetIP(i int) netip.Addr {
	off := i - 1
	return netip.AddrFrom4([4]byte{10, 213, byte(4 + off/254), byte(off%254 + 1)})
}

// fleetContainerIP is the docker address of fleet container k (1-based).
func fleetContainerIP(k int) netip.Addr { return netip.AddrFrom4([4]byte{10, 213, 250, byte(k)}) }

// FleetLayout spreads n hosts over containers of at most per hosts each.
func FleetLayout(n, per int) ([]FleetContainer, error) {
	if per <= 0 {
		per = DefaultFleetPerContainer
	}
	if n < 1 || n > MaxFleetHosts {
		return nil, fmt.Errorf("fleet hosts must be 1..%d, not %d: %w", MaxFleetHosts, n, ErrInvalidOptions)
	}
	var cs []FleetContainer
	for i := 1; i <= n; i++ {
		k := (i-1)/per + 1
		if k > len(cs) {
			cs = append(cs, FleetContainer{Name: ContainerName("fleet" + strconv.Itoa(k)), IP: fleetContainerIP(k).String()})
		}
		c := &cs[k-1]
		c.Hosts = append(c.Hosts, FleetHost{Name: FleetName(i), IP: FleetIP(i).String(), Container: c.Name})
	}
	return cs, nil
}

// fleetScript is the fleet container's command (sh -c SCRIPT fleet ADDR...):
// it adds the addresses, makes each host's key and directory once, starts
// one sshd per address in its own mount namespace, and stays up. It runs
// again on docker start.
const fleetScript = `set -u
mkdir -p /run/sshd /var/lib/rancher ` + FleetRoot + `
rm -f ` + FleetRoot + `/ready
for a in "$@"; do ip addr add "$a/16" dev eth0 2>/dev/null || true; done
for a in "$@"; do
	d=` + FleetRoot + `/$a
	mkdir -p "$d/rancher"
	[ -s "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$a" -f "$d/ssh_host_ed25519_key"
	unshare -m --propagation private sh -c 'mount --bind "$1/rancher" /var/lib/rancher && exec /usr/sbin/sshd -o ListenAddress="$2" -o PidFile="$1/sshd.pid" -o LogLevel=ERROR -h "$1/ssh_host_ed25519_key"' fleet-host "$d" "$a" || echo "sshd $a failed" >&2
done
touch ` + FleetRoot + `/ready
exec sleep infinity
`

// fleetKeyScript installs the client key (stdin) as root's only
// authorized key in a fleet container; every sshd there shares it.
const fleetKeyScript = `set -e
umask 077
mkdir -p /root/.ssh
cat >/root/.ssh/authorized_keys
chmod 700 /root/.ssh
chmod 600 /root/.ssh/authorized_keys`

// fleetHash identifies a container's recipe: a changed address list or
// script recreates the container.
func fleetHash(c FleetContainer, image string) string {
	h := sha256.New()
	fmt.Fprintf(h, "fleet v1\n%s\n%s\n%s\n", image, c.IP, fleetScript)
	for _, fh := range c.Hosts {
		fmt.Fprintf(h, "%s %s\n", fh.Name, fh.IP)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// fleetRunArgs is the docker run command line of a fleet container.
func fleetRunArgs(c FleetContainer, image string) []string {
	args := []string{
		"run", "-d", "--init",
		"--name", c.Name, "--hostname", strings.TrimPrefix(c.Name, containerPfx),
		"--network", NetworkName, "--ip", c.IP,
		"--cap-add", "NET_ADMIN", "--cap-add", "SYS_ADMIN",
		"--security-opt", "apparmor=unconfined",
		"--label", LabelKey + "=1",
		"--label", labelRole + "=" + string(RoleFleet),
		"--label", labelName + "=" + strings.TrimPrefix(c.Name, containerPfx),
		"--label", labelImage + "=" + image,
		"--label", labelFleet + "=" + fleetHash(c, image),
		"--entrypoint", "/bin/sh",
		image, "-c", fleetScript, "fleet",
	}
	for _, h := range c.Hosts {
		args = append(args, h.IP)
	}
	return args
}

// parseFleetKeys reads "ADDR ssh-ed25519 BASE64 [comment]" lines into
// known_hosts lines, in the order of hosts; every host must have one.
func parseFleetKeys(out string, hosts []FleetHost) ([]string, error) {
	byIP := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		ip, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		kh, err := knownHostsLine(ip, []byte(rest))
		if err != nil {
			return nil, err
		}
		byIP[ip] = kh
	}
	lines := make([]string, 0, len(hosts))
	for _, h := range hosts {
		kh, ok := byIP[h.IP]
		if !ok {
			return nil, fmt.Errorf("fleet host %s (%s): no host key", h.Name, h.IP)
		}
		lines = append(lines, kh)
	}
	return lines, nil
}

// FleetUp brings the fleet to the requested size (idempotent) and writes
// lab/out/fleet: fleet.json and known_hosts. The lab must be up (its
// network, host image and client key are reused).
func FleetUp(ctx context.Context, o FleetOptions) (*Fleet, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	cs, err := FleetLayout(o.Hosts, o.PerContainer)
	if err != nil {
		return nil, err
	}
	dir, err := fleetLabDir(o.Dir)
	if err != nil {
		return nil, err
	}
	l, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if err := fleetOverlap(l.Hosts, cs); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pub, err := os.ReadFile(l.SSH.IdentityFile + ".pub")
	if err != nil {
		return nil, fmt.Errorf("fleet: client key: %w", err)
	}
	image := l.HostImage
	raiseNeighbourTable(o.Hosts, logf)

	existing, err := inspectLab(ctx)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range cs {
		want[c.Name] = true
	}
	var surplus []string
	for name, c := range existing {
		if Role(c.Config.Labels[labelRole]) == RoleFleet && !want[name] {
			surplus = append(surplus, name)
		}
	}
	if len(surplus) > 0 {
		slices.Sort(surplus)
		logf("fleet: removing %d surplus containers", len(surplus))
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, surplus...)...); err != nil {
			return nil, fmt.Errorf("fleet: remove surplus: %w", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dockerParallelism)
	for _, c := range cs {
		ex, ok := existing[c.Name]
		g.Go(func() error {
			switch {
			case ok && ex.Config.Labels[labelFleet] == fleetHash(c, image) && ex.State.Running:
				return nil
			case ok && ex.Config.Labels[labelFleet] == fleetHash(c, image):
				logf("fleet: starting %s", c.Name)
				_, err := docker(gctx, "start", c.Name)
				return err
			case ok:
				if _, err := docker(gctx, "rm", "-f", "-v", c.Name); err != nil {
					return err
				}
			}
			logf("fleet: creating %s (%d sshd, %s .. %s)", c.Name, len(c.Hosts), c.Hosts[0].IP, c.Hosts[len(c.Hosts)-1].IP)
			_, err := docker(gctx, fleetRunArgs(c, image)...)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}

	var all []FleetHost
	var khLines []string
	for _, c := range cs {
		all = append(all, c.Hosts...)
		if err := poll(ctx, "wait for fleet container "+c.Name, 5*time.Minute, func(ctx context.Context) error {
			_, err := docker(ctx, "exec", c.Name, "test", "-e", FleetRoot+"/ready")
			return err
		}); err != nil {
			return nil, err
		}
		if _, err := run(ctx, pub, "docker", "exec", "-i", c.Name, "sh", "-c", fleetKeyScript); err != nil {
			return nil, fmt.Errorf("fleet: authorized_keys on %s: %w", c.Name, err)
		}
		out, err := docker(ctx, "exec", c.Name, "sh", "-c",
			`for d in `+FleetRoot+`/*/; do a=$(basename "$d"); [ -s "$d/ssh_host_ed25519_key.pub" ] && printf '%s %s\n' "$a" "$(cat "$d/ssh_host_ed25519_key.pub")"; done; true`)
		if err != nil {
			return nil, fmt.Errorf("fleet: host keys of %s: %w", c.Name, err)
		}
		lines, err := parseFleetKeys(out, c.Hosts)
		if err != nil {
			return nil, err
		}
		khLines = append(khLines, lines...)
	}
	logf("fleet: %d containers up, checking %d sshd", len(cs), len(all))
	if err := waitFleetSSH(ctx, all); err != nil {
		return nil, err
	}
	f := &Fleet{
		Dir:          filepath.Join(dir, fleetDirName),
		IdentityFile: l.SSH.IdentityFile,
		Image:        image,
		Containers:   cs,
		Hosts:        all,
	}
	f.KnownHostsFile = filepath.Join(f.Dir, "known_hosts")
	if err := writeFileAtomic(f.KnownHostsFile, []byte(strings.Join(khLines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(f.Dir, "fleet.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	logf("fleet up in %s: %d hosts in %d containers; known_hosts %s", time.Since(start).Round(100*time.Millisecond), len(all), len(cs), f.KnownHostsFile)
	return f, nil
}

// fleetOverlap refuses a fleet whose addresses the lab's hosts use: agent
// hosts past h508 are at 10.213.4.1 and up too.
func fleetOverlap(hosts []Host, cs []FleetContainer) error {
	used := map[string]string{}
	for _, h := range hosts {
		used[h.IP] = h.Name
	}
	for _, c := range cs {
		for _, fh := range c.Hosts {
			if name, ok := used[fh.IP]; ok {
				return fmt.Errorf("fleet host %s would take %s, the address of lab host %s (make lab HOSTS=508 at most with a fleet): %w", fh.Name, fh.IP, name, ErrInvalidOptions)
			}
		}
	}
	return nil
}

// waitFleetSSH waits until every fleet address answers with an SSH banner.
func waitFleetSSH(ctx context.Context, hosts []FleetHost) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, h := range hosts {
		g.Go(func() error {
			return poll(gctx, "wait for sshd on fleet host "+h.Name+" ("+h.IP+")", 60*time.Second, func(ctx context.Context) error {
				return sshBanner(ctx, h.IP)
			})
		})
	}
	return g.Wait()
}

// raiseNeighbourTable raises the machine's ARP table limits when they are
// below what a fleet of n hosts plus the lab needs: with the default
// gc_thresh3 of 1024, a 1000-host fleet overflows the table and connects
// fail with "No buffer space available". Best effort; logged.
func raiseNeighbourTable(n int, logf func(string, ...any)) {
	need := 2 * (n + 64)
	for i, name := range []string{"gc_thresh1", "gc_thresh2", "gc_thresh3"} {
		p := "/proc/sys/net/ipv4/neigh/default/" + name
		b, err := os.ReadFile(p)
		if err != nil {
			return
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
		want := need * (i + 1)
		if err != nil || cur >= want {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(want)), 0o644); err != nil {
			logf("fleet: cannot raise %s from %d to %d: %v", p, cur, want, err)
			continue
		}
		logf("fleet: raised %s from %d to %d", p, cur, want)
	}
}

// LoadFleet reads lab/out/fleet/fleet.json.
func LoadFleet(dir string) (*Fleet, error) {
	dir, err := fleetLabDir(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, fleetDirName, "fleet.json"))
	if err != nil {
		return nil, fmt.Errorf("load fleet (haplab fleet up): %w", err)
	}
	var f Fleet
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	return &f, nil
}

// FleetDown removes the fleet containers and lab/out/fleet.
func FleetDown(ctx context.Context, dir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := fleetLabDir(dir)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+labelRole+"="+string(RoleFleet))
	if err != nil {
		return fmt.Errorf("fleet: list containers: %w", err)
	}
	if ids != "" {
		logf("fleet: removing %d containers", len(strings.Fields(ids)))
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			return fmt.Errorf("fleet: remove containers: %w", err)
		}
	}
	return os.RemoveAll(filepath.Join(dir, fleetDirName))
}

// FleetExec runs a shell script in every fleet container (outside the
// hosts' mount namespaces: FleetHost.RancherDir is where a host's
// /var/lib/rancher is), e.g. to reset files between benchmark runs.
func (f *Fleet) FleetExec(ctx context.Context, script string) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range f.Containers {
		g.Go(func() error {
			if _, err := docker(gctx, "exec", c.Name, "sh", "-c", script); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Memory is the memory the fleet uses, from the containers' cgroups
// (docker stats), in bytes, and the number of sshd processes.
func (f *Fleet) Memory(ctx context.Context) (bytes int64, sshd int, err error) {
	for _, c := range f.Containers {
		out, err := docker(ctx, "exec", c.Name, "sh", "-c",
			`cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes; pgrep -c -x sshd || true`)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", c.Name, err)
		}
		fs := strings.Fields(out)
		if len(fs) < 2 {
			return 0, 0, fmt.Errorf("%s: unexpected %q", c.Name, out)
		}
		b, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", c.Name, err)
		}
		n, _ := strconv.Atoi(fs[1])
		bytes += b
		sshd += n
	}
	return bytes, sshd, nil
}

func fleetLabDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	return DefaultDir()
}
