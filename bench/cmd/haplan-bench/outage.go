package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
)

// outageRun is one upgrade of the lab's cluster from rancher.image to the
// next release, timed from the outside: the window runs from the first
// node stopped to the load balancer answering /ping again (verified
// against the cluster CA), as the prober saw it.
type outageRun struct {
	Tool     string  `json:"tool"`     // haplan, or manual (the documented procedure, scripted)
	Scenario string  `json:"scenario"` // upgrade
	Window   float64 `json:"window_seconds"`
	Wall     float64 `json:"wall_seconds"` // the whole command or script
	// Stopped is when the first node was stopped, seconds after the start.
	Stopped float64 `json:"first_stop_seconds"`
}

// outages measures the upgrade outage window of haplan and of the
// documented manual procedure, each from the lab's cluster at
// lab.RancherImage with the next release's image on no node (so that a
// pull inside the window is counted where the procedure does it).
func (c *config) outages(ctx context.Context) error {
	for range max(c.outReps, 1) {
		for _, tool := range []string{"haplan", "manual"} {
			o, err := c.measureUpgradeOutage(ctx, tool)
			if err != nil {
				return fmt.Errorf("%s upgrade outage: %w", tool, err)
			}
			c.outs = append(c.outs, o)
			fmt.Printf("upgrade outage, %s: %.1f s (first node stopped %.1f s after the start; whole run %.1f s)\n", o.Tool, o.Window, o.Stopped, o.Wall)
		}
	}
	return nil
}

// medianOutage is the (lower) median run of a tool by window.
func medianOutage(outs []outageRun, tool string) (outageRun, bool) {
	var xs []outageRun
	for _, o := range outs {
		if o.Tool == tool {
			xs = append(xs, o)
		}
	}
	if len(xs) == 0 {
		return outageRun{}, false
	}
	slices.SortFunc(xs, func(a, b outageRun) int { return cmp.Compare(a.Window, b.Window) })
	return xs[(len(xs)-1)/2], true
}

// outageRatio is the one line that compares the runs: the manual window
// over haplan's.
func outageRatio(outs []outageRun) string {
	h, ok1 := medianOutage(outs, "haplan")
	m, ok2 := medianOutage(outs, "manual")
	if !ok1 || !ok2 || h.Window <= 0 {
		return "upgrade outage: no pair of runs to compare"
	}
	return fmt.Sprintf("upgrade outage (medians): haplan %.1f s, manual %.1f s: manual / haplan = %.1f×", h.Window, m.Window, m.Window/h.Window)
}

// upgradeFrom puts the lab's cluster at lab.RancherImage, converged by
// haplan, with lab.NextRancherImage on no node.
func (c *config) upgradeFrom(ctx context.Context) error {
	if err := c.lab.ResetCluster(ctx, "cattle"); err != nil {
		return err
	}
	if _, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "-f", c.lab.Manifest); err != nil {
		return fmt.Errorf("install the lab's cluster: %w", err)
	}
	return nil
}

func (c *config) measureUpgradeOutage(ctx context.Context, tool string) (outageRun, error) {
	o := outageRun{Tool: tool, Scenario: "upgrade"}
	if err := c.upgradeFrom(ctx); err != nil {
		return o, err
	}
	p, err := c.newProber(ctx)
	if err != nil {
		return o, err
	}
	defer p.stop()
	start := time.Now()
	var stopped time.Time
	switch tool {
	case "haplan":
		stopped, err = c.haplanUpgrade(ctx)
	case "manual":
		stopped, err = c.manualUpgrade(ctx)
	}
	if err != nil {
		return o, err
	}
	o.Wall = time.Since(start).Seconds()
	o.Stopped = stopped.Sub(start).Seconds()
	back, err := p.backAfter(ctx, stopped, 5*time.Minute)
	if err != nil {
		return o, err
	}
	o.Window = back.Sub(stopped).Seconds()
	return o, c.checkRelease(ctx)
}

// haplanUpgrade applies the lab's manifest with the next release and
// returns when its first ha.stop started (its --json events).
func (c *config) haplanUpgrade(ctx context.Context) (time.Time, error) {
	src, err := os.ReadFile(c.lab.Manifest)
	if err != nil {
		return time.Time{}, err
	}
	text := strings.Replace(string(src), "  image: "+lab.RancherImage+"\n", "  image: "+lab.NextRancherImage+"\n", 1)
	if text == string(src) {
		return time.Time{}, errors.New("no rancher.image in the lab's manifest")
	}
	up := filepath.Join(filepath.Dir(c.lab.Manifest), "cluster-bench-upgrade.yaml")
	if err := os.WriteFile(up, []byte(text), 0o600); err != nil {
		return time.Time{}, err
	}
	defer os.Remove(up)
	defer os.RemoveAll(filepath.Join(filepath.Dir(c.lab.Manifest), ".haplan", "backups"))
	out, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "--json", "-f", up)
	if err != nil {
		return time.Time{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind == "apply_started" && strings.HasPrefix(e.Address, "ha.stop[") {
			return e.Time, nil
		}
	}
	return time.Time{}, errors.New("haplan's events show no ha.stop")
}

// manualUpgrade is the documented procedure (rancher-1.0-ha.md section 9:
// back up the database with Rancher's mysqldump options, then on each
// node remove the rancher containers, then run the same rancher-ha.sh
// with the new tag; all stopped before any starts), as an operator's
// script runs it: over OpenSSH, one node after the other.
func (c *config) manualUpgrade(ctx context.Context) (time.Time, error) {
	cfg, err := c.lab.AdminConfig()
	if err != nil {
		return time.Time{}, err
	}
	opt := filepath.Join(c.work, "admin.cnf")
	if err := os.WriteFile(opt, []byte(fmt.Sprintf("[client]\nhost=%s\nport=3306\nuser=%s\npassword=%s\n", c.lab.IP("db"), cfg.User, cfg.Passwd)), 0o600); err != nil {
		return time.Time{}, err
	}
	defer os.Remove(opt)
	dump, err := os.Create(filepath.Join(c.work, "manual-pre-upgrade.sql"))
	if err != nil {
		return time.Time{}, err
	}
	cmd := exec.CommandContext(ctx, "mysqldump", "--defaults-extra-file="+opt, "-c", "-e", "--default-character-set=utf8", "--single-transaction", "--skip-set-charset", "--add-drop-database", "-B", "cattle")
	cmd.Stdout = dump
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	dump.Close()
	if err != nil {
		return time.Time{}, fmt.Errorf("mysqldump: %w: %s", err, stderr.String())
	}
	ssh := func(node, remote string) ([]byte, error) {
		return command(ctx, nil, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+c.lab.Path("ssh/known_hosts"),
			"-o", "IdentitiesOnly=yes", "-i", c.lab.Path("ssh/id_ed25519"), "root@"+c.lab.IP(node), remote)
	}
	var stopped time.Time
	nodes := c.lab.ByRole(lab.RoleNode)
	for i, n := range nodes {
		// The first stop is timed on the node, just before its docker rm
		// (the lab's machines share this machine's clock), not before the
		// SSH connection.
		out, err := ssh(n.Name, `date +%s.%N; docker rm -f $(docker ps -aq --filter name=^/rancher-ha) >/dev/null`)
		if err != nil {
			return stopped, fmt.Errorf("%s: remove the rancher containers: %w", n.Name, err)
		}
		if i == 0 {
			var secs float64
			if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%f", &secs); err != nil {
				return stopped, fmt.Errorf("%s: the time before docker rm: %q", n.Name, out)
			}
			stopped = time.Unix(0, int64(secs*1e9))
		}
	}
	for _, n := range nodes {
		if _, err := ssh(n.Name, "sh "+layout.Script+" "+lab.NextRancherImage+" >/dev/null"); err != nil {
			return stopped, fmt.Errorf("%s: rancher-ha.sh %s: %w", n.Name, lab.NextRancherImage, err)
		}
	}
	return stopped, nil
}

// checkRelease checks that every node runs the next release.
func (c *config) checkRelease(ctx context.Context) error {
	for _, n := range c.lab.ByRole(lab.RoleNode) {
		out, err := c.lab.Exec(ctx, n.Name, nil, "docker", "inspect", "-f", "{{.State.Running}} {{.Config.Image}}", layout.HA)
		if err != nil || strings.TrimSpace(string(out)) != "true "+lab.NextRancherImage {
			return fmt.Errorf("%s after the upgrade: rancher-ha %q (%v), want running %s", n.Name, strings.TrimSpace(string(out)), err, lab.NextRancherImage)
		}
	}
	return nil
}

// prober asks https://<lb>/ping, verified against the cluster CA, every
// 100 ms whatever the answers take (each probe on its own, its own
// connection, 1 s at most), and keeps what each saw, stamped when it was
// sent.
type prober struct {
	mu      sync.Mutex
	samples []probeSample
	cancel  context.CancelFunc
	done    chan struct{}
}

type probeSample struct {
	at time.Time
	ok bool
}

func (c *config) newProber(ctx context.Context) (*prober, error) {
	ca, err := c.lab.Exec(ctx, c.lab.ByRole(lab.RoleNode)[0].Name, nil, "cat", layout.CA)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the cluster CA holds no certificate")
	}
	lb := c.lab.IP("lb")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: lb, MinVersion: tls.VersionTLS12}}}
	pctx, cancel := context.WithCancel(ctx)
	p := &prober{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sent := time.Now()
			wg.Go(func() {
				ok := false
				req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "https://"+lb+"/ping", nil)
				if resp, err := client.Do(req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "pong"
				}
				if pctx.Err() != nil {
					return // cut by the end of the run, not an answer
				}
				p.mu.Lock()
				p.samples = append(p.samples, probeSample{at: sent, ok: ok})
				p.mu.Unlock()
			})
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p, nil
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// steadyAnswers is how many probes in a row (half a second) must answer
// for the load balancer to count as back.
const steadyAnswers = 5

// backAfter is when /ping answered again for good after from: the first of
// steadyAnswers answers in a row that follow a failure after from (an
// answer between two failures, while a node still served, is no end),
// waiting up to limit for it.
func (p *prober) backAfter(ctx context.Context, from time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		p.mu.Lock()
		xs := slices.Clone(p.samples)
		p.mu.Unlock()
		slices.SortFunc(xs, func(a, b probeSample) int { return a.at.Compare(b.at) })
		failed, run := false, 0
		var first time.Time
		for _, s := range xs {
			switch {
			case s.at.Before(from):
			case !s.ok:
				failed, run = true, 0
			case failed:
				if run == 0 {
					first = s.at
				}
				if run++; run == steadyAnswers {
					return first, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the load balancer did not answer /ping again within %s of the first stop (failure seen: %t)", limit, failed)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
