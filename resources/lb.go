package resources

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/internal/linediff"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/transport"
)

// lbConfig is HAProxy on the load balancer host: TCP 80 and 443 to every
// node, each node health-checked on its own API (18080 /ping), so a node is
// only sent traffic once it serves.
type lbConfig struct{ base }

var _ engine.Step = (*lbConfig)(nil)

type lbConfigState struct {
	Exists  bool   `json:"exists"`
	Digest  string `json:"digest,omitempty"`
	Running bool   `json:"running"`
	// Content is the file as it is, for the plan's diff (not when it is
	// larger than maxDiffFile).
	Content string `json:"content,omitempty"`
}

// maxDiffFile bounds the configuration read for a plan's diff.
const maxDiffFile = 256 << 10

// renderHAProxy is the configuration haplan keeps on the LB. Deterministic:
// its digest is how drift is detected.
func (s *lbConfig) render() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Managed by haplan for cluster %q. Local edits are overwritten.\n", s.env.c.Name)
	b.WriteString(`global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout check 5s
`)
	for _, port := range []int{80, 443} {
		fmt.Fprintf(&b, "\nfrontend rancher_%d\n    bind *:%d\n    default_backend rancher_%d\n", port, port, port)
		fmt.Fprintf(&b, "\nbackend rancher_%d\n    balance source\n    option httpchk GET /ping\n    http-check expect string pong\n", port)
		for _, n := range s.env.c.Nodes {
			fmt.Fprintf(&b, "    server %s %s check port %d inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n",
				n.Name, net.JoinHostPort(n.Address, strconv.Itoa(port)), layout.HAAPIPort)
		}
	}
	return []byte(b.String())
}

func (s *lbConfig) Probe(ctx context.Context) (engine.State, error) {
	r, err := s.env.runner(ctx, s.env.lbTarget())
	if err != nil {
		return nil, err
	}
	fi, err := transport.StatFile(ctx, r, s.env.c.LoadBalancer.HAProxy.ConfigPath)
	if err != nil {
		return nil, err
	}
	st := lbConfigState{Exists: fi.Exists, Digest: "sha256:" + fi.SHA256}
	if !fi.Exists {
		st.Digest = ""
	}
	if fi.Exists && st.Digest != digest(s.render()) && fi.Size <= maxDiffFile {
		b, ok, err := transport.ReadFile(ctx, r, s.env.c.LoadBalancer.HAProxy.ConfigPath)
		if err != nil {
			return nil, err
		}
		if ok {
			st.Content = string(b)
		}
	}
	out, err := run(ctx, r, "pidof haproxy >/dev/null 2>&1 && echo running || echo stopped", false)
	if err != nil {
		return nil, err
	}
	st.Running = out == "running"
	return st, nil
}

func (s *lbConfig) Diff(cur engine.State) plans.Change {
	st := cur.(lbConfigState)
	want := digest(s.render())
	path := s.env.c.LoadBalancer.HAProxy.ConfigPath
	switch {
	case !st.Exists:
		return s.change(plans.Create, path+" does not exist", plans.Detail{Name: "config", New: short(want), Diff: configDiff("", string(s.render()))})
	case st.Digest != want:
		d := plans.Detail{Name: "config", Old: short(st.Digest), New: short(want)}
		if st.Content != "" {
			d.Diff = configDiff(st.Content, string(s.render()))
		}
		return s.change(plans.Update, path+" differs from the manifest", d)
	case !st.Running:
		return s.change(plans.Update, "haproxy is not running")
	}
	return s.change(plans.NoOp, "haproxy serves the manifest's configuration")
}

// Apply writes the new configuration next to the live one, validates it with
// haproxy -c, and only then moves it into place and reloads: an invalid
// configuration never replaces the running one.
func (s *lbConfig) Apply(ctx context.Context, _ plans.Change) error {
	return s.env.installHAProxy(ctx, s.render())
}

// installHAProxy writes cfg next to the LB's configuration, has haproxy
// check it, moves it in place and reloads: a configuration haproxy
// rejects never replaces the running one.
func (e *Env) installHAProxy(ctx context.Context, cfg []byte) error {
	r, err := e.runner(ctx, e.lbTarget())
	if err != nil {
		return err
	}
	hp := e.c.LoadBalancer.HAProxy
	tmp := hp.ConfigPath + ".haplan-new"
	if err := transport.WriteFile(ctx, r, tmp, cfg, 0o644); err != nil {
		return err
	}
	check := fmt.Sprintf("haproxy -c -q -f %s || { rc=$?; rm -f %s; exit $rc; }", transport.Quote(tmp), transport.Quote(tmp))
	if _, err := run(ctx, r, check, true); err != nil {
		// Only haproxy's own verdict is a rejection; a lost connection
		// or a cancel says nothing about the configuration.
		var pe *transport.ProcessError
		if errors.As(err, &pe) {
			return fmt.Errorf("new haproxy configuration rejected, the running one is untouched: %w", err)
		}
		return fmt.Errorf("check the new haproxy configuration: %w", err)
	}
	if _, err := run(ctx, r, fmt.Sprintf("mv -f %s %s", transport.Quote(tmp), transport.Quote(hp.ConfigPath)), true); err != nil {
		return err
	}
	if _, err := run(ctx, r, hp.ReloadCommand, true); err != nil {
		return fmt.Errorf("reload haproxy: %w", err)
	}
	return nil
}

// configDiff is what changes in a configuration file, for the plan: the
// hunks of a unified diff, with lines that may hold a credential (HAProxy's
// "stats auth", userlists, passwords, keys, tokens, a header set to a
// bearer token) masked; nil without the old
// content.
func configDiff(old, new string) []string {
	lines, ok := linediff.Unified(old, new, 3)
	if !ok {
		return nil
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "@@") {
			continue
		}
		if lower := strings.ToLower(l); strings.Contains(lower, "auth") || strings.Contains(lower, "pass") ||
			strings.Contains(lower, "secret") || strings.Contains(lower, "key") || strings.Contains(lower, "userlist") || strings.Contains(lower, " user ") ||
			strings.Contains(lower, "token") || strings.Contains(lower, "bearer") || strings.Contains(lower, "credential") {
			f := strings.Fields(l[1:])
			first := ""
			if len(f) > 0 {
				first = f[0] + " "
			}
			lines[i] = l[:1] + strings.Repeat(" ", len(l[1:])-len(strings.TrimLeft(l[1:], " \t"))) + first + "(masked: may hold a secret)"
		}
	}
	return lines
}
