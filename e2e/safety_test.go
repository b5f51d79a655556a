//go:build lab

package e2e

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/haplan/haplan/lab"
)

// TestSafety proves issue 4's promises on the real lab, on one cluster that
// is installed once and then interrupted, raced, made stale, rekeyed and
// broken: a distinctive password never leaves haplan (outputs, files, the
// nodes' process lists), a second apply is locked out, interrupts stop
// cleanly, a stale saved plan is refused, a changed host key stops haplan
// after one connection, and faults mid-apply fail the right steps and
// leave a world the next apply converges.
func TestSafety(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := loadLab(t)
	s := newSafeCluster(t, l)
	resetCluster(t, ctx, l, "cattle")
	t.Cleanup(func() { restoreLab(t, l) })

	// The nodes' process lists, sampled for the whole test.
	sm := sampleProcesses(l, []string{"rs1", "rs2", "rs3"}, 200*time.Millisecond, s.pwMark, s.adminPW)
	defer sm.finish()

	for _, phase := range []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s *safeCluster)
	}{
		{"install: interrupted, locked out, converged", testInstallInterruptedAndLocked},
		{"plans and containers hold no secret", testPlansHoldNoSecret},
		{"stale saved plan refused", testStalePlan},
		{"host key mismatch", testHostKeyMismatch},
		{"host key accept-new", testAcceptNew},
		{"second interrupt cuts a write", testSecondInterrupt},
		{"force-unlock a hung holder", testForceUnlock},
		{"faults mid-apply", testFaults},
	} {
		if !t.Run(phase.name, func(t *testing.T) { phase.run(t, ctx, s) }) {
			t.FailNow() // the later phases start from a converged cluster
		}
	}

	samples, session, found := sm.finish()
	t.Logf("%d process-list samples of rs1..rs3", samples)
	if !session {
		t.Error("no sample caught one of haplan's SSH sessions: the sampling proves nothing")
	}
	for _, f := range found {
		t.Errorf("a node's process list holds a secret: %s", f)
	}
	s.checkNoSecrets(t)
}

// restoreLab brings every host back (started, connected, known host keys)
// and removes the cluster, so the next test starts from a fresh lab.
func restoreLab(t *testing.T, l *lab.Lab) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range l.Hosts {
		if h.Role == lab.RoleRegistry {
			continue
		}
		wg.Go(func() {
			_ = l.Heal(ctx, h.Name) // fails when connected
			if err := l.Start(ctx, h.Name); err != nil {
				t.Errorf("restore %s: %v", h.Name, err)
			}
		})
	}
	wg.Wait()
	if err := l.RefreshKnownHosts(ctx); err != nil {
		t.Errorf("restore known_hosts: %v", err)
	}
	resetCluster(t, ctx, l, "cattle")
}

// testInstallInterruptedAndLocked installs the cluster with the distinctive
// password. The first apply is raced by a second (locked out, exit 3,
// holder named) and interrupted once while the bootstrap server starts:
// that step finishes, nothing new starts, exit 1. The next apply converges.
func testInstallInterruptedAndLocked(t *testing.T, ctx context.Context, s *safeCluster) {
	first := s.start(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	first.waitFor(t, "waiting for /ping of the bootstrap server", 3*time.Minute)

	second := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	if second.code != 3 {
		t.Errorf("second apply while the first runs: exit %d, want 3 (locked)", second.code)
	}
	for _, want := range []string{"locked by another haplan run", fmt.Sprintf("pid %d ", first.cmd.Process.Pid), "(haplan apply)", "haplan force-unlock"} {
		if !strings.Contains(second.stderr, want) {
			t.Errorf("second apply's error does not name %q", want)
		}
	}

	if err := first.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := first.wait(t, s)
	if r.code != 1 {
		t.Errorf("interrupted apply: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "Interrupted: starting no new steps") {
		t.Error("the interrupt was not acknowledged on stderr")
	}
	// The running step finished; nothing after it started.
	for _, want := range []string{"bootstrap.run done in", "Apply interrupted:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("interrupted apply's output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`Not started \(interrupted\):\n(  - .*\n)*  - script\.generate\n`).MatchString(r.stdout) {
		t.Error("script.generate is not listed as not started")
	}
	for _, addr := range []string{"script.generate", "ha.start[rs1]", "cert.distribute[h1]"} {
		if strings.Contains(r.stdout, addr+" started") {
			t.Errorf("%s started after the interrupt", addr)
		}
	}
	if got := strings.TrimSpace(sh(t, ctx, s.l, "rs1", "docker inspect -f '{{.State.Status}}' haplan-bootstrap; docker ps -aq -f name=rancher-ha | wc -l")); got != "running\n0" {
		t.Errorf("rs1 after the interrupt: bootstrap status and rancher-ha count %q, want running and 0", got)
	}
	checkNoTempFiles(t, ctx, s.l)

	if r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after the interrupt: exit %d", r.code)
	}
	if got := pending(t, ctx, s.manifest); len(got) != 0 {
		t.Fatalf("plan after apply is not empty: %v", got)
	}
	checkCA(t, ctx, s.l)
}

// checkNoTempFiles asserts that no remote write left its temporary file
// behind: every write is a rename of a complete file, and a cut one is
// cleaned up.
func checkNoTempFiles(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, h := range l.Hosts {
		if !h.Role.HasSSH() {
			continue
		}
		out := sh(t, ctx, l, h.Name, "find /var/lib/rancher /etc/haproxy -name '.*.haplan.*' 2>/dev/null; true")
		if strings.TrimSpace(out) != "" {
			t.Errorf("%s: temporary files of a remote write were left behind:\n%s", h.Name, out)
		}
	}
}

// testPlansHoldNoSecret renders the converged cluster's plan in every
// format and saves it; the final search covers them. The nodes' containers
// and files must not hold the password in clear either.
func testPlansHoldNoSecret(t *testing.T, ctx context.Context, s *safeCluster) {
	planFile := filepath.Join(s.dir, "converged.plan")
	for _, args := range [][]string{
		{"plan", "-f", s.manifest, "--show-unchanged"},
		{"plan", "-f", s.manifest, "--json"},
		{"plan", "-f", s.manifest, "--format", "markdown", "--show-unchanged"},
		{"plan", "-f", s.manifest, "--out", planFile},
		{"check", "-f", s.manifest, "--json"},
	} {
		if r := s.haplan(t, ctx, args...); r.code != 0 {
			t.Errorf("haplan %v: exit %d", args, r.code)
		}
	}
	if _, err := os.Stat(planFile); err != nil {
		t.Errorf("plan --out wrote no file: %v", err)
	}
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		out := sh(t, ctx, s.l, n, "docker inspect $(docker ps -aq); ls /var/lib/rancher/etc/haplan")
		for _, p := range s.leaks("docker inspect on "+n, out) {
			t.Error(p)
		}
		if strings.Contains(out, "bootstrap.env") {
			t.Errorf("%s still holds the bootstrap's env file", n)
		}
	}
}

// testStalePlan saves a plan, changes the world behind haplan's back, and
// expects apply PLANFILE to refuse naming the step that moved, changing
// nothing.
func testStalePlan(t *testing.T, ctx context.Context, s *safeCluster) {
	l := s.l
	sh(t, ctx, l, "h2", "chmod 0644 /var/lib/rancher/etc/ssl/ca.crt")
	planFile := filepath.Join(s.dir, "stale.plan")
	if r := s.haplan(t, ctx, "plan", "-f", s.manifest, "--out", planFile); r.code != 0 {
		t.Fatalf("plan --out: exit %d", r.code)
	}
	sh(t, ctx, l, "h1", "rm /var/lib/rancher/etc/ssl/ca.crt")

	r := s.haplan(t, ctx, "apply", "-f", s.manifest, planFile)
	if r.code != 1 {
		t.Errorf("apply of a stale plan: exit %d, want 1", r.code)
	}
	if !regexp.MustCompile(`(?s)saved plan is stale.*\n\s+cert\.distribute\[h1\]: .*now: \+ /var/lib/rancher/etc/ssl/ca\.crt is missing`).MatchString(r.stderr) {
		t.Errorf("the refusal does not name cert.distribute[h1] as what moved:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "cert.distribute[h2]") || strings.Contains(r.stdout, "cert.distribute[h2] started") {
		t.Error("the refusal blames, or applies, the planned cert.distribute[h2]")
	}
	// Nothing changed: h2 still has the mode the plan would fix, h1 no CA.
	if got := sh(t, ctx, l, "h2", "stat -c %a /var/lib/rancher/etc/ssl/ca.crt"); got != "644\n" {
		t.Errorf("h2's CA mode after the refused apply: %q, want 644 (untouched)", got)
	}
	if got := sh(t, ctx, l, "h1", "test -e /var/lib/rancher/etc/ssl/ca.crt && echo present || echo absent"); got != "absent\n" {
		t.Errorf("h1's CA after the refused apply: %s", got)
	}
	if diff := cmp.Diff([]string{"cert.distribute[h1]", "cert.distribute[h2]"}, pending(t, ctx, s.manifest)); diff != "" {
		t.Errorf("plan after the refused apply (-want +got):\n%s", diff)
	}
	if r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}
	checkCA(t, ctx, l)
}

// testHostKeyMismatch gives rs2 a new host key behind haplan's back: plan
// stops naming rs2 and both fingerprints, exit 1, after exactly one
// connection (rs2's sshd log); refreshing known_hosts heals it.
func testHostKeyMismatch(t *testing.T, ctx context.Context, s *safeCluster) {
	l := s.l
	oldFP := knownFingerprint(t, l, nodeIP(t, l, "rs2"))
	if err := l.RegenerateHostKey(ctx, "rs2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.RefreshKnownHosts(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
	})
	pub := sh(t, ctx, l, "rs2", "cat /etc/ssh/ssh_host_ed25519_key.pub")
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	newFP := ssh.FingerprintSHA256(k)
	if newFP == oldFP {
		t.Fatal("rs2's host key did not change")
	}
	logLines := strings.TrimSpace(sh(t, ctx, l, "rs2", "wc -l < /var/log/sshd.log"))

	r := s.haplan(t, ctx, "plan", "-f", s.manifest)
	if r.code != 1 {
		t.Errorf("plan with rs2's key changed: exit %d, want 1", r.code)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{"rs2: HOST KEY MISMATCH for 10.213.1.2:22", newFP, oldFP, "not retrying"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan's error lacks %q", want)
		}
	}
	if strings.Contains(out, "attempt(s)") {
		t.Error("the mismatch was reported as a connect failure after attempts")
	}
	// One TCP connection from this machine reached rs2's sshd.
	since := sh(t, ctx, l, "rs2", "tail -n +$(("+logLines+" + 1)) /var/log/sshd.log")
	ports := map[string]bool{}
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(l.Gateway)+` port (\d+)`).FindAllStringSubmatch(since, -1) {
		ports[m[1]] = true
	}
	if len(ports) != 1 {
		t.Errorf("rs2's sshd saw %d connections from haplan, want 1:\n%s", len(ports), since)
	}

	if err := l.RefreshKnownHosts(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, ctx, s.manifest); len(got) != 0 {
		t.Fatalf("plan after refreshing known_hosts is not empty: %v", got)
	}
}

// knownFingerprint is the fingerprint known_hosts holds for ip.
func knownFingerprint(t *testing.T, l *lab.Lab, ip string) string {
	t.Helper()
	b, err := os.ReadFile(l.SSH.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	for rest := b; len(rest) > 0; {
		_, hosts, key, _, next, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break
		}
		rest = next
		for _, h := range hosts {
			if h == ip {
				return ssh.FingerprintSHA256(key)
			}
		}
	}
	t.Fatalf("no key for %s in %s", ip, l.SSH.KnownHostsFile)
	return ""
}

// testAcceptNew plans with an empty known_hosts under accept-new: every SSH
// host's key is appended, and the plan works.
func testAcceptNew(t *testing.T, ctx context.Context, s *safeCluster) {
	src, err := os.ReadFile(s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(s.dir, "known_hosts.new")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := s.writeManifest(t, "cluster-accept-new.yaml", s.rewrite(t, string(src), map[string]string{
		"knownHostsFile: " + s.l.SSH.KnownHostsFile: "knownHostsFile: " + kh,
		"hostKeyPolicy: strict":                     "hostKeyPolicy: accept-new",
	}))
	if got := pending(t, ctx, m); len(got) != 0 {
		t.Errorf("plan under accept-new: %v, want nothing pending", got)
	}
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		got = append(got, strings.Fields(line)[0])
	}
	sort.Strings(got)
	var want []string
	for _, h := range s.l.Hosts {
		if h.Role.HasSSH() && h.Role != lab.RoleSpare { // the spares are in no manifest
			want = append(want, h.IP)
		}
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts appended to an empty known_hosts under accept-new (-want +got):\n%s", diff)
	}
	// A second plan trusts the appended keys and appends nothing more.
	if got := pending(t, ctx, m); len(got) != 0 {
		t.Errorf("second plan under accept-new: %v", got)
	}
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Error("the second plan under accept-new changed known_hosts")
	}
}

// testSecondInterrupt blocks the CA write to h1 after its data is written
// but before the rename; the first SIGINT lets it run, the second cuts it:
// exit 1, the remote process killed, h1's CA not half-written, and the
// next apply converges with no temporary file left.
func testSecondInterrupt(t *testing.T, ctx context.Context, s *safeCluster) {
	l := s.l
	sh(t, ctx, l, "h1", "rm /var/lib/rancher/etc/ssl/ca.crt")
	remove := armShim(t, ctx, l, "h1", "sync", "/usr/bin/sync", "")
	run := s.start(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	waitShim(t, ctx, l, "h1", "sync", run)
	pids := strings.Fields(sh(t, ctx, l, "h1", "cat /tmp/haplan-shim-sync.pids"))

	if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	run.waitFor(t, "Interrupt again to cancel them", 10*time.Second)
	select {
	case <-run.done:
		t.Fatal("the first interrupt ended the apply; it should let the running step finish")
	case <-time.After(time.Second):
	}
	if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := run.wait(t, s)
	if r.code != 1 {
		t.Errorf("apply interrupted twice: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "cancelling running steps") {
		t.Error("the second interrupt was not acknowledged")
	}
	if !regexp.MustCompile(`cert\.distribute\[h1\] FAILED .*context canceled`).MatchString(r.stdout) || strings.Contains(r.stdout, "cert.distribute[h1] done") {
		t.Error("cert.distribute[h1] is not reported as cut")
	}
	// The remote writer is gone, and h1 has no CA rather than part of one.
	for _, pid := range pids {
		if out, _ := l.Exec(ctx, "h1", nil, "sh", "-c", "kill -0 "+pid+" 2>/dev/null && echo alive || echo gone"); string(out) != "gone\n" {
			t.Errorf("h1: process %s of the cut write is still running", pid)
		}
	}
	if got := sh(t, ctx, l, "h1", "test -e /var/lib/rancher/etc/ssl/ca.crt && echo present || echo absent"); got != "absent\n" {
		t.Errorf("h1's CA after the cut write: %s, want absent", got)
	}

	remove()
	if r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after the interrupts: exit %d", r.code)
	}
	if got := pending(t, ctx, s.manifest); len(got) != 0 {
		t.Fatalf("plan after apply is not empty: %v", got)
	}
	checkCA(t, ctx, l)
	checkNoTempFiles(t, ctx, l)
}

// testForceUnlock hangs an apply (SIGSTOP while it writes h1's CA): its
// lock stays held, a second apply is refused naming it, force-unlock
// releases it, and a third apply then converges.
func testForceUnlock(t *testing.T, ctx context.Context, s *safeCluster) {
	l := s.l
	sh(t, ctx, l, "h1", "rm /var/lib/rancher/etc/ssl/ca.crt")
	remove := armShim(t, ctx, l, "h1", "sync", "/usr/bin/sync", "")
	hung := s.start(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	waitShim(t, ctx, l, "h1", "sync", hung)
	if err := hung.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hung.cmd.Process.Kill() })
	remove() // its remote write dies with it

	// A hung haplan runs no statement that could carry its record (once its
	// last one ends): it is named by its database session, from this machine.
	waitLockIdle(t, ctx, adminConn(t, ctx, l), "haplan/lab")
	holder := regexp.MustCompile(`database session \d+ of root from ` + regexp.QuoteMeta(l.Gateway) + `:\d+ \(sleep for`)
	r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	if r.code != 3 || !holder.MatchString(r.stderr) {
		t.Errorf("apply while a hung haplan holds the lock: exit %d, want 3 naming %s", r.code, holder)
	}
	r = s.haplan(t, ctx, "force-unlock", "-f", s.manifest)
	if r.code != 0 || !holder.MatchString(r.stdout) {
		t.Errorf("force-unlock: exit %d, want 0 naming %s", r.code, holder)
	}
	if r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after force-unlock: exit %d", r.code)
	}
	if err := hung.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-hung.done
	if got := pending(t, ctx, s.manifest); len(got) != 0 {
		t.Fatalf("plan after apply is not empty: %v", got)
	}
	checkCA(t, ctx, l)
}

// testFaults breaks five steps of one apply at once, each while it runs:
// rs3 is killed and rs2 partitioned during their image pulls, the LB host
// killed while haproxy checks its new configuration, the DB stopped while
// a grant waits on it, and rs1's pull fails with the password in its
// stderr. Each fails naming its step and host, nothing is reported done,
// exit 1; once healed, the next apply converges.
func testFaults(t *testing.T, ctx context.Context, s *safeCluster) {
	l := s.l
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		sh(t, ctx, l, n, "docker rmi -f rancher/server:v1.0.1 >/dev/null")
	}
	sh(t, ctx, l, "lb", "echo '# hand edit' >> /etc/haproxy/haproxy.cfg")
	sql(t, ctx, l, "DROP USER 'cattle'@'"+nodeIP(t, l, "rs1")+"';")
	want := []string{"db.grant[rs1]", "image.pull[rs1]", "image.pull[rs2]", "image.pull[rs3]", "lb.config"}
	if diff := cmp.Diff(want, pending(t, ctx, s.manifest)); diff != "" {
		t.Fatalf("plan before the faults (-want +got):\n%s", diff)
	}

	shim(t, ctx, l, "rs1", "docker", fmt.Sprintf(`#!/bin/sh
if [ "$1" = pull ]; then
  printf 'Error response from daemon: login as cattle with password %%s rejected\n' '%s' >&2
  exit 1
fi
exec /usr/bin/docker "$@"
`, strings.ReplaceAll(s.pw(), "'", `'\''`)))
	armShim(t, ctx, l, "rs2", "docker", "/usr/bin/docker", "pull")
	armShim(t, ctx, l, "rs3", "docker", "/usr/bin/docker", "pull")
	armShim(t, ctx, l, "lb", "haproxy", "/usr/sbin/haproxy", "-c")
	// A global read lock makes the grant wait on the server.
	conn := adminConn(t, ctx, l)
	if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		t.Fatal(err)
	}

	run := s.start(t, ctx, "apply", "-f", s.manifest, "--auto-approve")
	for _, h := range []string{"rs2", "rs3"} {
		waitShim(t, ctx, l, h, "docker", run)
	}
	waitShim(t, ctx, l, "lb", "haproxy", run)
	waitGrantBlocked(t, ctx, conn, run)

	var wg sync.WaitGroup
	for _, fault := range []func() error{
		func() error { return l.Kill(ctx, "rs3") },
		func() error { return l.Partition(ctx, "rs2") },
		func() error { return l.Kill(ctx, "lb") },
		func() error { return l.Kill(ctx, "db") },
	} {
		wg.Go(func() {
			if err := fault(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r := run.wait(t, s)

	if r.code != 1 {
		t.Errorf("apply with faults: exit %d, want 1", r.code)
	}
	for _, f := range []struct{ addr, host, why string }{
		{"image.pull[rs1]", "rs1", "exited with status 1"},
		{"image.pull[rs2]", "rs2", "connection lost while running"},
		{"image.pull[rs3]", "rs3", "connection lost while running"},
		{"lb.config", "lb", "connection lost while running"},
		{"db.grant[rs1]", l.DB.Host, "the connection to the database server was lost"},
	} {
		m := regexp.MustCompile(`(?m)^  ✗ ` + regexp.QuoteMeta(f.addr) + `.*\n((?:      .*\n)+)`).FindString(r.stdout)
		switch {
		case m == "":
			t.Errorf("%s is not listed as failed", f.addr)
		case !strings.Contains(m, f.host+":") || !strings.Contains(m, f.why):
			t.Errorf("%s's error does not name %s and say %q:\n%s", f.addr, f.host, f.why, m)
		}
		if strings.Contains(r.stdout, f.addr+" done") {
			t.Errorf("%s is reported done", f.addr)
		}
	}
	if !strings.Contains(r.stdout, "Error response from daemon: login as cattle with password (sensitive) rejected") {
		t.Error("rs1's stderr, which held the password, is not shown masked")
	}
	for _, addr := range []string{"ha.start[rs1]", "ha.verify", "cert.distribute[h1]"} {
		if !strings.Contains(r.stdout, "  - "+addr+" (because ") {
			t.Errorf("%s is not listed as skipped", addr)
		}
	}
	if !strings.Contains(r.stdout, "Apply failed: 0 applied") {
		t.Error("the summary does not say that nothing was applied")
	}

	// Heal, then the next apply converges.
	for _, fix := range []func() error{
		func() error { return l.Start(ctx, "rs3") },
		func() error { return l.Heal(ctx, "rs2") },
		func() error { return l.Start(ctx, "lb") },
		func() error { return l.Start(ctx, "db") },
	} {
		wg.Go(func() {
			if err := fix(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, h := range []struct{ host, name string }{{"rs1", "docker"}, {"rs2", "docker"}, {"rs3", "docker"}, {"lb", "haproxy"}} {
		sh(t, ctx, l, h.host, "rm -f /usr/local/bin/"+h.name)
	}
	if r := s.haplan(t, ctx, "apply", "-f", s.manifest, "--auto-approve"); r.code != 0 {
		t.Fatalf("apply after healing: exit %d", r.code)
	}
	// The outage outlived the agents' reports: a host whose agent could
	// not report (the load balancer sends it to rs1, whose grant was
	// dropped) turns "reconnecting" once the server has missed its pings
	// for agent.ping.reconnect.after.failed.count schedules, also after
	// the apply that healed rs1, and is active again with its next
	// report (rancher-agent retries 5 s after a failure). That is the
	// cluster healing itself; the plan is judged once it has.
	waitHostsHealthy(t, ctx, l, 90*time.Second)
	if got := pending(t, ctx, s.manifest); len(got) != 0 {
		t.Fatalf("plan after apply is not empty: %v", got)
	}
	checkNoTempFiles(t, ctx, l)
}

// waitGrantBlocked waits until haplan's grant waits for the read lock that
// conn holds.
func waitGrantBlocked(t *testing.T, ctx context.Context, conn *dbsql.Conn, run *bgHaplan) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE IN ('Waiting for global read lock', 'Waiting for backup lock')").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-run.done:
			t.Fatalf("haplan exited before its grant waited on the DB\n--- stdout\n%s--- stderr\n%s", run.out.String(), run.errb.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("haplan's grant never waited on the DB")
		}
	}
}

// waitLockIdle waits until the session holding a named lock runs nothing.
func waitLockIdle(t *testing.T, ctx context.Context, conn *dbsql.Conn, name string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var cmd string
		err := conn.QueryRowContext(ctx, "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)", name).Scan(&cmd)
		if err != nil && !errors.Is(err, dbsql.ErrNoRows) {
			t.Fatal(err)
		}
		if cmd == "Sleep" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session holding %q did not go idle (%q, %v)", name, cmd, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
