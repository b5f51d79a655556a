package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
)

// outageRun is one upgrade or resize of the lab's cluster, timed from the
// outside: the window runs from the first node stopped to the load
// balancer answering /ping again (verified against the cluster CA), as
// the prober saw it.
type outageRun struct {
	Tool     string  `json:"tool"`     // haplan, or manual (the documented procedure, scripted)
	Scenario string  `json:"scenario"` // upgrade, or resize (3 to 5 nodes)
	Window   float64 `json:"window_seconds"`
	Wall     float64 `json:"wall_seconds"` // the whole command or script
	// Stopped is when the first node was stopped, seconds after the start.
	Stopped float64 `json:"first_stop_seconds"`
}

// outageScenarios are what -outage-scenarios may name, in the order they run.
var outageScenarios = []string{"upgrade", "resize"}

// outages measures the outage window of each scenario, haplan's and the
// documented manual procedure's, alternating, each from the lab's
// cluster converged at lab.RancherImage with three nodes: the upgrade to
// the next release (its image on no node, so that a pull inside the
// window is counted where the procedure does it), and the resize from 3
// to 5 nodes (the lab's spares).
func (c *config) outages(ctx context.Context) error {
	for _, sc := range outageScenarios {
		if !slices.Contains(c.outScenarios, sc) {
			continue
		}
		restore, err := c.outagePrepare(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s outage: %w", sc, err)
		}
		err = c.outageRuns(ctx, sc)
		if rerr := restore(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *config) outageRuns(ctx context.Context, scenario string) error {
	for range max(c.outReps, 1) {
		for _, tool := range []string{"haplan", "manual"} {
			o, err := c.measureOutage(ctx, scenario, tool)
			if err != nil {
				return fmt.Errorf("%s %s outage: %w", tool, scenario, err)
			}
			c.outs = append(c.outs, o)
			fmt.Printf("%s outage, %s: %.1f s (first node stopped %.1f s after the start; whole run %.1f s)\n", o.Scenario, o.Tool, o.Window, o.Stopped, o.Wall)
		}
	}
	return nil
}

// outagePrepare readies the lab for a scenario and returns what puts it
// back (the lab's cluster installed from its manifest): a resize to five
// nodes needs the two spares and max_connections of at least 250
// (MariaDB's default is 151), restored afterwards.
func (c *config) outagePrepare(ctx context.Context, scenario string) (func() error, error) {
	if scenario != "resize" {
		// The cluster back at the lab manifest's release.
		return func() error { return c.installThree(context.WithoutCancel(ctx)) }, nil
	}
	if n := len(c.lab.ByRole(lab.RoleSpare)); n < 2 {
		return nil, fmt.Errorf("the lab has %d spare machines, the resize to five needs 2 (haplab up --spares 2)", n)
	}
	db, err := c.adminDB()
	if err != nil {
		return nil, err
	}
	var was int
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.max_connections").Scan(&was); err != nil {
		db.Close()
		return nil, fmt.Errorf("read max_connections: %w", err)
	}
	if was < 250 {
		if _, err := db.ExecContext(ctx, "SET GLOBAL max_connections = 250"); err != nil {
			db.Close()
			return nil, fmt.Errorf("raise max_connections for five nodes: %w", err)
		}
	}
	return func() error {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err := c.lab.ResetCluster(ctx, "cattle") // no spare left in the cluster
		if _, serr := db.ExecContext(ctx, "SET GLOBAL max_connections = "+strconv.Itoa(was)); err == nil && serr != nil {
			err = fmt.Errorf("restore max_connections %d: %w", was, serr)
		}
		if err == nil {
			err = c.installThree(ctx) // the lab's cluster as its manifest says
		}
		return err
	}, nil
}

// medianOutage is the (lower) median run of a tool in a scenario by window.
func medianOutage(outs []outageRun, scenario, tool string) (outageRun, bool) {
	return lowerMedian(outs, func(o outageRun) bool { return o.Tool == tool && o.Scenario == scenario }, func(o outageRun) float64 { return o.Window })
}

// outageRatio is the one line that compares a scenario's runs: the manual
// window over haplan's.
func outageRatio(outs []outageRun, scenario string) string {
	h, ok1 := medianOutage(outs, scenario, "haplan")
	m, ok2 := medianOutage(outs, scenario, "manual")
	if !ok1 || !ok2 || h.Window <= 0 {
		return scenario + " outage: no pair of runs to compare"
	}
	return fmt.Sprintf("%s outage (medians): haplan %.1f s, manual %.1f s: manual / haplan = %.1f×", scenario, h.Window, m.Window, m.Window/h.Window)
}

// outageScenariosRun are the scenarios of outs, in outageScenarios' order.
func outageScenariosRun(outs []outageRun) []string {
	var xs []string
	for _, sc := range outageScenarios {
		if slices.ContainsFunc(outs, func(o outageRun) bool { return o.Scenario == sc }) {
			xs = append(xs, sc)
		}
	}
	return xs
}

// installThree puts the lab's cluster at lab.RancherImage with its three
// nodes, converged by haplan, with lab.NextRancherImage on no node and
// the spares clean.
func (c *config) installThree(ctx context.Context) error {
	if err := c.lab.ResetCluster(ctx, "cattle"); err != nil {
		return err
	}
	if _, err := command(ctx, nil, c.bin, "apply", "--auto-approve", "-f", c.lab.Manifest); err != nil {
		return fmt.Errorf("install the lab's cluster: %w", err)
	}
	return nil
}

func (c *config) measureOutage(ctx context.Context, scenario, tool string) (outageRun, error) {
	o := outageRun{Tool: tool, Scenario: scenario}
	if err := c.installThree(ctx); err != nil {
		return o, err
	}
	p, err := c.newProber(ctx)
	if err != nil {
		return o, err
	}
	defer p.stop()
	start := time.Now()
	var stopped time.Time
	switch scenario + "/" + tool {
	case "upgrade/haplan":
		stopped, err = c.haplanApply(ctx, "upgrade", c.upgradeManifest)
	case "upgrade/manual":
		stopped, err = c.manualUpgrade(ctx)
	case "resize/haplan":
		stopped, err = c.haplanApply(ctx, "resize", c.resizeManifest)
	case "resize/manual":
		stopped, err = c.manualResize(ctx)
	default:
		err = fmt.Errorf("no scenario %s for %s", scenario, tool)
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
	if scenario == "resize" {
		return o, c.checkResized(ctx)
	}
	return o, c.checkRelease(ctx)
}

// upgradeManifest is the lab's manifest with the next release.
func (c *config) upgradeManifest(src string) (string, error) {
	text := strings.Replace(src, "  image: "+lab.RancherImage+"\n", "  image: "+lab.NextRancherImage+"\n", 1)
	if text == src {
		return "", errors.New("no rancher.image in the lab's manifest")
	}
	return text, nil
}

// resizeManifest is the lab's manifest with its two spares as nodes.
func (c *config) resizeManifest(src string) (string, error) {
	return lab.WithNodes(src, c.lab.ByRole(lab.RoleSpare)[:2]...)
}

// haplanApply applies the lab's manifest as edit changes it and returns
// when its first ha.stop started (its --json events).
func (c *config) haplanApply(ctx context.Context, scenario string, edit func(string) (string, error)) (time.Time, error) {
	src, err := os.ReadFile(c.lab.Manifest)
	if err != nil {
		return time.Time{}, err
	}
	text, err := edit(string(src))
	if err != nil {
		return time.Time{}, err
	}
	up := filepath.Join(filepath.Dir(c.lab.Manifest), "cluster-bench-"+scenario+".yaml")
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
	if err := c.manualDump(ctx, "manual-pre-upgrade.sql"); err != nil {
		return time.Time{}, err
	}
	nodes := c.lab.ByRole(lab.RoleNode)
	stopped, err := c.manualStop(ctx, nodes)
	if err != nil {
		return stopped, err
	}
	return stopped, c.manualStart(ctx, nodes, lab.NextRancherImage)
}

// manualDump is the documented backup: mysqldump with Rancher's options,
// into the work directory.
func (c *config) manualDump(ctx context.Context, name string) error {
	opt, err := c.adminOptions()
	if err != nil {
		return err
	}
	defer os.Remove(opt)
	dump, err := os.Create(filepath.Join(c.work, name))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "mysqldump", "--defaults-extra-file="+opt, "-c", "-e", "--default-character-set=utf8", "--single-transaction", "--skip-set-charset", "--add-drop-database", "-B", "cattle")
	cmd.Stdout = dump
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	dump.Close()
	if err != nil {
		return fmt.Errorf("mysqldump: %w: %s", err, stderr.String())
	}
	return nil
}

// adminOptions writes a mysql client option file (0600) with the lab
// database's admin account, for the mysql and mysqldump commands of the
// manual procedures; the caller removes it.
func (c *config) adminOptions() (string, error) {
	cfg, err := c.lab.AdminConfig()
	if err != nil {
		return "", err
	}
	opt := filepath.Join(c.work, "admin.cnf")
	if err := os.WriteFile(opt, []byte(fmt.Sprintf("[client]\nhost=%s\nport=3306\nuser=%s\npassword=%s\n", c.lab.IP("db"), cfg.User, cfg.Passwd)), 0o600); err != nil {
		return "", err
	}
	return opt, nil
}

// adminDB is a connection pool to the lab database as its admin.
func (c *config) adminDB() (*sql.DB, error) {
	dsn, err := c.lab.AdminDSN()
	if err != nil {
		return nil, err
	}
	return sql.Open("mysql", dsn)
}

// ssh runs a command on a lab machine over OpenSSH, as an operator's
// script does (the lab's key and known_hosts, host keys checked).
func (c *config) ssh(ctx context.Context, stdin []byte, machine, remote string) ([]byte, error) {
	return command(ctx, stdin, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+c.lab.Path("ssh/known_hosts"),
		"-o", "IdentitiesOnly=yes", "-i", c.lab.Path("ssh/id_ed25519"), "root@"+c.lab.IP(machine), remote)
}

// manualStop removes the rancher containers on each node in turn and
// returns when the first went: timed on the node, just before its docker
// rm (the lab's machines share this machine's clock), not before the SSH
// connection.
func (c *config) manualStop(ctx context.Context, nodes []lab.Host) (time.Time, error) {
	var stopped time.Time
	for i, n := range nodes {
		out, err := c.ssh(ctx, nil, n.Name, `date +%s.%N; docker rm -f $(docker ps -aq --filter name=^/rancher-ha) >/dev/null`)
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
	return stopped, nil
}

// manualStart runs the node's rancher-ha.sh with the image's tag on each
// node in turn.
func (c *config) manualStart(ctx context.Context, nodes []lab.Host, image string) error {
	for _, n := range nodes {
		if _, err := c.ssh(ctx, nil, n.Name, "sh "+layout.Script+" "+image+" >/dev/null"); err != nil {
			return fmt.Errorf("%s: rancher-ha.sh %s: %w", n.Name, image, err)
		}
	}
	return nil
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
	client, err := c.lbClient(ctx, probeTimeout)
	if err != nil {
		return nil, err
	}
	lb := c.lab.IP("lb")
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

// lbClient is an HTTP client for https://<lb>/, verified against the
// cluster CA as a node holds it, without keep-alives or a proxy.
func (c *config) lbClient(ctx context.Context, timeout time.Duration) (*http.Client, error) {
	ca, err := c.clusterCA(ctx)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the cluster CA holds no certificate")
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: c.lab.IP("lb"), MinVersion: tls.VersionTLS12}}}, nil
}

// clusterCA is the cluster CA as the first node that has written it holds
// it (each node writes it when its management stack starts), waiting a
// minute at most.
func (c *config) clusterCA(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var errs []error
		for _, n := range c.lab.ByRole(lab.RoleNode) {
			ca, err := c.lab.Exec(ctx, n.Name, nil, "cat", layout.CA)
			if err == nil {
				return ca, nil
			}
			errs = append(errs, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("read the cluster CA: %w", errors.Join(errs...))
		}
		time.Sleep(time.Second)
	}
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// probeTimeout bounds each probe.
const probeTimeout = time.Second

// steadyAnswers is how many probes in a row (half a second) must answer
// for the load balancer to count as back.
const steadyAnswers = 5

// backAfter is when /ping answered again for good after from: the first
// answer after the last failure that followed from, once steadyAnswers
// answers in a row follow that failure (answers between failures, while
// some node still served or the load balancer had not yet taken a stopped
// node out of its pool, are no end), waiting up to limit for it. Call it
// once the tool has stopped every node it stops.
func (p *prober) backAfter(ctx context.Context, from time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		// Only probes that have surely ended count: one sent since may
		// still be waiting for an answer that fails, and it would come
		// before the answers after it.
		settled := time.Now().Add(-probeTimeout - 200*time.Millisecond)
		p.mu.Lock()
		xs := slices.DeleteFunc(slices.Clone(p.samples), func(s probeSample) bool { return !s.at.Before(settled) })
		p.mu.Unlock()
		slices.SortFunc(xs, func(a, b probeSample) int { return a.at.Compare(b.at) })
		last := -1
		for i, s := range xs {
			if !s.at.Before(from) && !s.ok {
				last = i
			}
		}
		failed := last >= 0
		if failed && len(xs)-1-last >= steadyAnswers {
			return xs[last+1].at, nil
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
