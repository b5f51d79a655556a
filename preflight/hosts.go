package preflight

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/dockerapi"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// nodeFacts is what the checks of one node learnt, for the checks that
// look across nodes.
type nodeFacts struct {
	connected bool
	runner    transport.Runner
	haRunning bool
	// peerPorts are the ports the node listens on for other nodes.
	peerPorts map[int]bool
	clockRead bool
	skew      time.Duration
}

// node runs the checks of one node: SSH and privileges first, then (if
// connected) dockerd, ports, memory and clock concurrently.
func (p *pass) node(ctx context.Context, n manifests.Node, bootstrap bool) nodeFacts {
	var nf nodeFacts
	r, ok := check(ctx, p, task{"ssh", n.Name, "SSH to " + n.Address}, func(ctx context.Context) (transport.Runner, []Finding) {
		return p.connect(ctx, "ssh", n.Name, n.Address)
	})
	if !ok || r == nil {
		return nf
	}
	nf.connected, nf.runner = true, r

	var wg sync.WaitGroup
	wg.Go(func() { p.docker(ctx, n.Name, r, evalDocker) })
	wg.Go(func() {
		check(ctx, p, task{"version", n.Name, "docker inspect " + layout.HA}, func(ctx context.Context) (struct{}, []Finding) {
			c, err := dockerapi.New(r).Inspect(ctx, layout.HA)
			if err != nil {
				f := p.failed("version", n.Name, "cannot read rancher-ha's image, so cannot tell an upgrade or a downgrade", err)
				f.Severity = Warning
				return struct{}{}, []Finding{f}
			}
			return struct{}{}, evalVersion(n.Name, c, p.c.Rancher.Image)
		})
	})
	wg.Go(func() {
		pf, _ := check(ctx, p, task{"ports", n.Name, "listing listening ports"}, func(ctx context.Context) (portFacts, []Finding) {
			pf, err := readPorts(ctx, r)
			if err != nil {
				return pf, []Finding{p.failed("ports", n.Name, "cannot list listening ports", err)}
			}
			return pf, evalPorts(n.Name, pf, bootstrap)
		})
		nf.haRunning = pf.haRunning()
		nf.peerPorts = pf.peerListening(cmp.Or(n.ClusterIP, n.Address))
	})
	wg.Go(func() {
		check(ctx, p, task{"memory", n.Name, "reading /proc/meminfo"}, func(ctx context.Context) (struct{}, []Finding) {
			out, err := run(ctx, r, "cat /proc/meminfo")
			if err != nil {
				return struct{}{}, []Finding{p.failed("memory", n.Name, "cannot read /proc/meminfo", err)}
			}
			total, err := parseMemTotal(out)
			if err != nil {
				return struct{}{}, []Finding{{Severity: Warning, Check: "memory", Host: n.Name, Message: err.Error()}}
			}
			return struct{}{}, []Finding{evalMemory(n.Name, total)}
		})
	})
	wg.Go(func() {
		type clock struct {
			skew time.Duration
			ok   bool
		}
		c, _ := check(ctx, p, task{"clock", n.Name, "reading the clock"}, func(ctx context.Context) (clock, []Finding) {
			skew, unc, err := p.readClock(ctx, r)
			if err != nil {
				return clock{}, []Finding{p.failed("clock", n.Name, "cannot read the clock", err)}
			}
			return clock{skew, true}, []Finding{evalClock(n.Name, skew, unc)}
		})
		nf.skew, nf.clockRead = c.skew, c.ok
	})
	wg.Wait()
	return nf
}

// docker checks the Docker Engine a machine runs, judged by eval.
func (p *pass) docker(ctx context.Context, host string, r transport.Runner, eval func(string, dockerapi.EngineVersion) []Finding) {
	check(ctx, p, task{"docker", host, "docker version"}, func(ctx context.Context) (struct{}, []Finding) {
		out, err := dockerapi.New(r).Version(ctx)
		if err != nil {
			f := p.failed("docker", host, "dockerd is not answering", err)
			f.Hint = "install Docker and start dockerd; the SSH user must be able to use /var/run/docker.sock"
			return struct{}{}, []Finding{f}
		}
		if out.Version == "" {
			f := p.failed("docker", host, "dockerd did not say its version", nil)
			return struct{}{}, []Finding{f}
		}
		return struct{}{}, eval(host, out)
	})
}

// host checks a host that will be registered: SSH and privileges, then
// its Docker Engine, which the agent runs on.
func (p *pass) host(ctx context.Context, h manifests.Host) {
	r, ok := check(ctx, p, task{"ssh", h.Name, "SSH to " + h.Address}, func(ctx context.Context) (transport.Runner, []Finding) {
		return p.connect(ctx, "ssh", h.Name, h.Address)
	})
	if ok && r != nil {
		p.docker(ctx, h.Name, r, evalHostDocker)
	}
}

// connect gets a runner for host and checks that commands run as root
// (directly or through passwordless sudo, which the runner applies).
func (p *pass) connect(ctx context.Context, name, host, addr string) (transport.Runner, []Finding) {
	r, err := p.env.Runner(ctx, host)
	if err != nil {
		f := p.failed(name, host, "cannot connect over SSH to "+addr, err)
		f.Hint = sshHint(err)
		var conn *transport.ConnectError
		if errors.As(err, &conn) {
			// A machine that does not answer does not stop the plan of
			// the others: its steps are shown as not probed, and apply
			// fails them without trying (host keys and logins that fail
			// still block).
			f.Severity = Warning
			f.Message += "; its steps are not probed, and apply skips them"
		}
		return nil, []Finding{f}
	}
	uid, err := run(ctx, r, "id -u")
	if err != nil {
		f := p.failed(name, host, "connected to "+addr+" but cannot run commands", err)
		var pe *transport.ProcessError
		if errors.As(err, &pe) && strings.Contains(pe.Stderr, "sudo") {
			f.Hint = "the SSH user needs passwordless sudo (`sudo -n true` must succeed), or connect as root"
		}
		return nil, []Finding{f}
	}
	if uid != "0" {
		// The runner did not elevate; see whether sudo would.
		if _, err := run(ctx, r, "sudo -n true"); err != nil {
			return nil, []Finding{{Severity: Error, Check: name, Host: host,
				Message: fmt.Sprintf("connected to %s as uid %s, which is not root, and `sudo -n true` fails", addr, uid),
				Hint:    "connect as root, or give the SSH user passwordless sudo"}}
		}
		return r, []Finding{{Severity: Warning, Check: name, Host: host,
			Message: fmt.Sprintf("connected to %s as uid %s; passwordless sudo works but commands are not run through it", addr, uid)}}
	}
	return r, []Finding{{Severity: OK, Check: name, Host: host, Message: "connected to " + addr + " with root privileges"}}
}

func sshHint(err error) string {
	var (
		hk   *transport.HostKeyError
		auth *transport.AuthError
		conn *transport.ConnectError
	)
	switch {
	case errors.As(err, &hk):
		return "verify the host key before trusting it (see the message)"
	case errors.As(err, &auth):
		return "check ssh.user and ssh.identityFile; the public key must be in the user's authorized_keys"
	case errors.As(err, &conn):
		return "check the address and ssh.port, that sshd runs, and that no firewall drops SSH"
	}
	return ""
}

// run executes a read-only command and returns trimmed stdout.
func run(ctx context.Context, r transport.Runner, line string) (string, error) {
	res, err := r.Run(ctx, transport.Cmd{Line: line})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// portsScript lists TCP listeners: ss, or /proc/net/tcp without it.
const portsScript = `if command -v ss >/dev/null 2>&1; then echo '#ss'; ss -Htlnp; else echo '#proc'; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi`

// readPorts reads the node's TCP listeners and its running containers (the
// ports they publish, so that a port held by docker-proxy is named by its
// container), both at once.
func readPorts(ctx context.Context, r transport.Runner) (portFacts, error) {
	var (
		cs   []dockerapi.Container
		lerr error
		wg   sync.WaitGroup
	)
	wg.Go(func() { cs, lerr = dockerapi.New(r).List(ctx) })
	res, err := r.Run(ctx, transport.Cmd{Line: portsScript})
	wg.Wait()
	if err != nil {
		return portFacts{}, err
	}
	if lerr != nil {
		return portFacts{}, lerr
	}
	pf, err := parsePortsOutput(string(res.Stdout))
	pf.Containers = cs
	return pf, err
}

func parsePortsOutput(out string) (portFacts, error) {
	var pf portFacts
	head := out
	switch {
	case strings.HasPrefix(head, "#ss\n"):
		pf.Listeners = parseSS(strings.TrimPrefix(head, "#ss\n"))
	case strings.HasPrefix(head, "#proc\n"):
		pf.Listeners = parseProcNetTCP(strings.TrimPrefix(head, "#proc\n"))
	default:
		return pf, fmt.Errorf("unexpected output of the port listing: %.80q", out)
	}
	return pf, nil
}

// readClock reads the remote clock and estimates its skew.
func (p *pass) readClock(ctx context.Context, r transport.Runner) (skew, uncertainty time.Duration, err error) {
	sent := p.opts.Now()
	out, err := run(ctx, r, "date +%s.%N")
	received := p.opts.Now()
	if err != nil {
		return 0, 0, err
	}
	remote, precise, err := parseEpoch(out)
	if err != nil {
		return 0, 0, err
	}
	skew, uncertainty = clockSkew(sent, received, remote, precise)
	return skew, uncertainty, nil
}

// loadBalancer checks the LB host: over SSH with haproxy installed when
// haplan manages HAProxy, else a TCP connect to 80 and 443 from here.
func (p *pass) loadBalancer(ctx context.Context) {
	lb := p.c.LoadBalancer
	if lb.Address == "" {
		return
	}
	if lb.HAProxy != nil {
		r, ok := check(ctx, p, task{"lb", layout.LBHost, "SSH to " + lb.Address}, func(ctx context.Context) (transport.Runner, []Finding) {
			return p.connect(ctx, "lb", layout.LBHost, lb.Address)
		})
		if !ok || r == nil {
			return
		}
		check(ctx, p, task{"lb", layout.LBHost, "haproxy -v"}, func(ctx context.Context) (struct{}, []Finding) {
			out, err := run(ctx, r, "haproxy -v")
			if err != nil {
				f := p.failed("lb", layout.LBHost, "HAProxy is not installed on the load balancer", err)
				f.Hint = "install haproxy on " + lb.Address + " (haplan configures it but does not install it)"
				return struct{}{}, []Finding{f}
			}
			first, _, _ := strings.Cut(out, "\n")
			return struct{}{}, []Finding{{Severity: Info, Check: "lb", Host: layout.LBHost, Message: first}}
		})
		return
	}
	var wg sync.WaitGroup
	for _, port := range []int{80, 443} {
		wg.Go(func() {
			check(ctx, p, task{"lb", layout.LBHost, "connecting to " + net.JoinHostPort(lb.Address, strconv.Itoa(port))}, func(ctx context.Context) (struct{}, []Finding) {
				return struct{}{}, []Finding{dialLB(ctx, p.env, lb.Address, port)}
			})
		})
	}
	wg.Wait()
}

// dialLB connects to an external load balancer from inside the site;
// closed is only Info, because it may forward to nodes that do not listen
// yet.
func dialLB(ctx context.Context, env Env, addr string, port int) Finding {
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	c, err := env.DialLB(ctx, hp)
	if err != nil {
		return Finding{Severity: Info, Check: "lb", Host: layout.LBHost,
			Message: fmt.Sprintf("external load balancer %s does not accept connections yet: %v", hp, err),
			Hint:    "expected before the cluster is up; it must forward 80 and 443 to the nodes"}
	}
	_ = c.Close()
	return Finding{Severity: OK, Check: "lb", Host: layout.LBHost, Message: "external load balancer accepts connections on " + hp}
}

// reachability probes, from every connected node, every other node's SSH
// port and, on nodes where rancher-ha runs, the HA ports it listens on for
// other nodes. A port that listens but cannot be reached is a firewall
// problem, hence an error; a port not listening yet is not probed (the
// cluster may still be forming).
func (p *pass) reachability(ctx context.Context, facts []nodeFacts) {
	if len(p.c.Nodes) < 2 {
		return
	}
	var wg sync.WaitGroup
	for i, from := range p.c.Nodes {
		if !facts[i].connected {
			continue
		}
		var targets []reachTarget
		for j, to := range p.c.Nodes {
			if j == i || !facts[j].connected {
				continue // a node haplan cannot reach is reported once, as such
			}
			addr := cmp.Or(to.ClusterIP, to.Address)
			targets = append(targets, reachTarget{Node: to.Name, Addr: addr, Port: cmp.Or(to.SSH.Port, 22)})
			if facts[j].haRunning {
				for _, port := range haPorts() {
					if facts[j].peerPorts[port] {
						targets = append(targets, reachTarget{Node: to.Name, Addr: addr, Port: port})
					}
				}
			}
		}
		r := facts[i].runner
		wg.Go(func() {
			check(ctx, p, task{"reach", from.Name, "probing the other nodes"}, func(ctx context.Context) (struct{}, []Finding) {
				res, err := r.Run(ctx, transport.Cmd{Line: reachScript(targets)})
				if err != nil {
					return struct{}{}, []Finding{p.failed("reach", from.Name, "cannot probe the other nodes", err)}
				}
				return struct{}{}, evalReach(from.Name, targets, string(res.Stdout))
			})
		})
	}
	wg.Wait()
}

// reachScript probes every target in parallel, 2 s each, printing
// "ADDR PORT RC" lines; it prefers nc and falls back to bash's /dev/tcp.
func reachScript(ts []reachTarget) string {
	var b strings.Builder
	b.WriteString(`probe() { if command -v nc >/dev/null 2>&1; then nc -z -w2 "$1" "$2"; ` +
		`elif command -v bash >/dev/null 2>&1; then timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2"; else return 127; fi; }; `)
	for _, t := range ts {
		a, port := transport.Quote(t.Addr), strconv.Itoa(t.Port)
		fmt.Fprintf(&b, `(probe %s %s >/dev/null 2>&1; echo %s %s "$?") & `, a, port, a, port)
	}
	b.WriteString("wait")
	return b.String()
}
