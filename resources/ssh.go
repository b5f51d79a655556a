package resources

// How haplan reaches a machine over SSH: the manifest's ssh settings, the
// operator's ssh_config and the defaults, merged into a transport.Config;
// and the runner a step gets for a machine.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/transport"
)

// target is a machine haplan reaches over SSH.
type target struct {
	name, address string
	ssh           manifests.SSH
	once          bool // one connection attempt (transport.Config.Once)
}

func nodeTarget(n manifests.Node) target { return target{name: n.Name, address: n.Address, ssh: n.SSH} }
func hostTarget(h manifests.Host) target { return target{name: h.Name, address: h.Address, ssh: h.SSH} }

func (e *Env) lbTarget() target {
	return target{name: layout.LBHost, address: e.c.LoadBalancer.Address, ssh: e.c.LoadBalancer.HAProxy.SSH}
}

// readSSHConfig reads the operator's OpenSSH client configuration; files
// nil means the ones ssh itself reads.
func readSSHConfig(files []string) (*transport.SSHConfig, error) {
	home, _ := os.UserHomeDir() // without a home there is no ~/.ssh/config to read
	if files == nil {
		files = transport.DefaultSSHConfigFiles(home)
	}
	return transport.ReadSSHConfig(home, files...)
}

// sshConfig is how haplan reaches t. The precedence, from strongest:
//
//  1. what the manifest writes (the machine's ssh block, then the
//     manifest's ssh defaults): user, port, identityFile, bastion;
//  2. the operator's ssh_config for the machine's address (Host patterns
//     are matched against it): User, Port, IdentityFile, ProxyJump;
//  3. the built-in defaults: root, port 22, and without any identity file
//     the ssh-agent's keys, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
//
// HostName from ssh_config always applies: the manifest's address is then
// an alias and haplan dials (and checks known_hosts for) the HostName, as
// ssh does. Known hosts, host-key policy and pinned keys come only from the
// manifest.
func (e *Env) sshConfig(t target) (transport.Config, error) {
	hs, err := e.sshcfg.Lookup(t.address)
	if err != nil {
		return transport.Config{}, fmt.Errorf("%s: %w", t.name, err)
	}
	user, identity, err := sshIdentity(t.ssh, hs, 0)
	if err != nil {
		return transport.Config{}, fmt.Errorf("%s: %w", t.name, err)
	}
	cfg := transport.Config{
		Host:           t.name,
		Address:        cmp.Or(hs.HostName, t.address),
		Port:           t.ssh.Port,
		User:           user,
		IdentityFile:   identity,
		KnownHostsFile: t.ssh.KnownHostsFile,
		HostKeyPolicy:  t.ssh.HostKeyPolicy,
		HostKey:        t.ssh.HostKey,
		ConnectTimeout: e.c.Rancher.Timeouts.SSH,
		Sudo:           user != "root",
		KexAlgorithms:  hs.KexAlgorithms,
		Once:           t.once,
	}
	if !t.ssh.Explicit.Has(manifests.SSHPort) && hs.Port != 0 {
		cfg.Port = hs.Port
	}
	jump, from := t.ssh.Bastion, "ssh.bastion"
	if jump == "" {
		jump, from = hs.ProxyJump, "ProxyJump in ssh config"
	}
	if jump != "" {
		b, err := e.jumpChain(jump, t.ssh, cfg.ConnectTimeout)
		if err != nil {
			return cfg, fmt.Errorf("%s: %s: %w", t.name, from, err)
		}
		cfg.Bastion = b
	}
	return cfg, nil
}

// sshIdentity picks the login user and identity file: the manifest's when it
// wrote them, else ssh_config's, else root and no file (the agent and the
// default keys). port is the one the connection will use, for %p; 0 means
// the manifest's.
func sshIdentity(s manifests.SSH, hs transport.HostSettings, port int) (user, identity string, err error) {
	user = s.User
	if !s.Explicit.Has(manifests.SSHUser) {
		user = cmp.Or(hs.User, manifests.DefaultSSHUser)
	}
	if s.Explicit.Has(manifests.SSHIdentityFile) {
		return user, s.IdentityFile, nil
	}
	if port == 0 {
		port = s.Port
		if !s.Explicit.Has(manifests.SSHPort) && hs.Port != 0 {
			port = hs.Port
		}
	}
	identity, err = hs.IdentityFile(user, port)
	return user, identity, err
}

// jumpChain turns "[user@]host[:port]" hops, separated by commas and
// connected to in order, into nested Configs: the last hop is the target's
// Bastion, its Bastion the hop before. Each hop is looked up in ssh_config
// like a machine; a user or port written in the hop wins, and the
// machine's manifest settings stand in for the rest.
func (e *Env) jumpChain(spec string, s manifests.SSH, timeout time.Duration) (*transport.Config, error) {
	var prev *transport.Config
	for _, hop := range strings.Split(spec, ",") {
		user, host, port, err := parseBastion(strings.TrimSpace(hop))
		if err != nil {
			return nil, err
		}
		hs, err := e.sshcfg.Lookup(host)
		if err != nil {
			return nil, err
		}
		port = cmp.Or(port, hs.Port, manifests.DefaultSSHPort)
		defUser, identity, err := sshIdentity(s, hs, port)
		if err != nil {
			return nil, err
		}
		b := &transport.Config{
			Host:           "bastion " + host,
			Address:        cmp.Or(hs.HostName, host),
			Port:           port,
			User:           cmp.Or(user, defUser),
			IdentityFile:   identity,
			KnownHostsFile: s.KnownHostsFile,
			HostKeyPolicy:  s.HostKeyPolicy,
			ConnectTimeout: timeout,
			Bastion:        prev,
			KexAlgorithms:  hs.KexAlgorithms,
		}
		prev = b
	}
	return prev, nil
}

// parseBastion reads "user@host:port" (user and port optional; 0 when
// absent).
func parseBastion(s string) (user, host string, port int, err error) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	h, p, serr := net.SplitHostPort(s)
	if serr != nil {
		h = s
	} else if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return "", "", 0, fmt.Errorf("bad port in %q", s)
	}
	if h == "" {
		return "", "", 0, errors.New("no host")
	}
	return user, h, port, nil
}

// runner returns a connected runner for t. It is read-only (a mutating
// command fails loudly) unless ctx is a step's Apply (engine.MayChange):
// the engine decides, not the caller.
func (e *Env) runner(ctx context.Context, t target) (transport.Runner, error) {
	cfg, err := e.sshConfig(t)
	if err != nil {
		return nil, err
	}
	var c transport.Runner
	if e.connect != nil {
		c, err = e.connect(ctx, cfg)
	} else {
		c, err = e.pool.Client(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if engine.MayChange(ctx) {
		return c, nil
	}
	return transport.ReadOnly(c), nil
}

// Waits on the critical path (bootstrap readiness, cluster formation) look
// again every pollEvery: every poll that comes late is time the whole apply
// waits for nothing, and a poll is one small HTTP request. They tell the
// operator where they are every reportEvery, and a wait for a container
// checks that it is still alive every containerCheckEvery.
const (
	pollEvery           = 250 * time.Millisecond
	reportEvery         = 5 * time.Second
	containerCheckEvery = 10 * time.Second
)

// run executes a command and returns trimmed stdout.
func run(ctx context.Context, r transport.Runner, line string, mutates bool) (string, error) {
	return runWithin(ctx, r, line, mutates, 0)
}

// runWithin is run with a timeout of its own (0: the pool's default).
func runWithin(ctx context.Context, r transport.Runner, line string, mutates bool, limit time.Duration) (string, error) {
	res, err := r.Run(ctx, transport.Cmd{Line: line, Mutates: mutates, Timeout: limit})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}
