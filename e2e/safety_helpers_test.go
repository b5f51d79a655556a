//go:build lab

package e2e

import (
	"context"
	"crypto/rand"
	dbsql "database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/haplan/haplan/internal/syncbuf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/lab"
)

// safeCluster is the lab's cluster under a manifest of its own, in a
// temporary directory, whose application password is distinctive: every
// byte haplan prints or writes for it is kept, to be searched for the
// secrets at the end.
type safeCluster struct {
	l        *lab.Lab
	dir      string // the manifest's directory: debug logs and plan files land here
	manifest string
	// pwMark is the start of the application password, letters and digits
	// only; the password goes on with characters that JSON and shells
	// escape, so a leak in any encoding still shows pwMark.
	pwMark  string
	adminPW string

	mu      sync.Mutex
	printed []string // every stdout and stderr of every haplan run
}

func newSafeCluster(t *testing.T, l *lab.Lab) *safeCluster {
	t.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	s := &safeCluster{l: l, dir: t.TempDir(), pwMark: "Zq9-distinctive-pw-" + hex.EncodeToString(rnd[:])}
	adm, err := os.ReadFile(l.DB.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	s.adminPW = strings.TrimSpace(string(adm))
	src, err := os.ReadFile(l.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(s.dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "db-password"), []byte(s.pw()), 0o600); err != nil {
		t.Fatal(err)
	}
	m := s.rewrite(t, string(src), map[string]string{
		"identityFile: ssh/id_ed25519":      "identityFile: " + l.SSH.IdentityFile,
		"knownHostsFile: ssh/known_hosts":   "knownHostsFile: " + l.SSH.KnownHostsFile,
		"{file: secrets/db-admin-password}": "{file: " + l.DB.AdminPasswordFile + "}",
	})
	s.manifest = s.writeManifest(t, "cluster.yaml", m)
	return s
}

// pw is the application password: pwMark, then a quote, an apostrophe, a
// backslash and characters HTML-safe JSON escapes.
func (s *safeCluster) pw() string { return s.pwMark + `"'\<&>` }

// rewrite replaces each old string of src, which must be there.
func (s *safeCluster) rewrite(t *testing.T, src string, repl map[string]string) string {
	t.Helper()
	for old, new := range repl {
		if !strings.Contains(src, old) {
			t.Fatalf("manifest has no %q:\n%s", old, src)
		}
		src = strings.ReplaceAll(src, old, new)
	}
	return src
}

func (s *safeCluster) writeManifest(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *safeCluster) keep(r result) {
	s.mu.Lock()
	s.printed = append(s.printed, r.stdout, r.stderr)
	s.mu.Unlock()
}

// haplan runs the binary, keeping what it printed.
func (s *safeCluster) haplan(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	r := haplan(t, ctx, args...)
	s.keep(r)
	return r
}

// leaks lists where text holds a secret.
func (s *safeCluster) leaks(what, text string) []string {
	var out []string
	for _, sec := range []struct{ name, val string }{{"the application password", s.pwMark}, {"the admin password", s.adminPW}} {
		if i := strings.Index(text, sec.val); i >= 0 {
			out = append(out, fmt.Sprintf("%s holds %s: …%s…", what, sec.name, excerpt(text, i)))
		}
	}
	return out
}

func excerpt(s string, i int) string {
	return strings.ReplaceAll(s[max(0, i-60):min(len(s), i+80)], "\n", "⏎")
}

// checkNoSecrets searches every byte haplan printed and every file it wrote
// under the manifest's directory (debug logs, saved plans) for the secrets.
func (s *safeCluster) checkNoSecrets(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	printed := strings.Join(s.printed, "\n")
	s.mu.Unlock()
	if len(printed) < 1000 {
		t.Fatalf("only %d bytes of haplan output kept: the search would prove nothing", len(printed))
	}
	problems := s.leaks("haplan's output", printed)
	files := 0
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(s.dir, "secrets")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		problems = append(problems, s.leaks(p, string(b))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(s.dir, ".haplan", "logs", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no debug log was written")
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("searched %d bytes of output and %d files (%d debug logs) for the secrets", len(printed), files, len(logs))
}

// bgHaplan is a haplan run in the background, to be signalled or raced.
type bgHaplan struct {
	args      []string
	cmd       *exec.Cmd
	out, errb syncbuf.Buffer
	done      chan struct{}
	err       error
}

func (s *safeCluster) start(t *testing.T, ctx context.Context, args ...string) *bgHaplan {
	t.Helper()
	return startBG(t, ctx, args...)
}

// startBG starts haplan in the background; the test's end kills it if it
// still runs.
func startBG(t *testing.T, ctx context.Context, args ...string) *bgHaplan {
	t.Helper()
	b := &bgHaplan{args: args, done: make(chan struct{})}
	b.cmd = exec.CommandContext(ctx, haplanBin, args...)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errb
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitFor waits until the run printed want, on either stream.
func (b *bgHaplan) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.out.String()+b.errb.String(), want) {
		select {
		case <-b.done:
			if strings.Contains(b.out.String()+b.errb.String(), want) {
				return // printed just before it exited
			}
			t.Fatalf("haplan %v exited before printing %q\n--- stdout\n%s--- stderr\n%s", b.args, want, b.out.String(), b.errb.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("haplan %v did not print %q within %s\n--- stdout\n%s--- stderr\n%s", b.args, want, timeout, b.out.String(), b.errb.String())
		}
	}
}

// wait waits for the run to exit and keeps its output.
func (b *bgHaplan) wait(t *testing.T, s *safeCluster) result {
	t.Helper()
	<-b.done
	r := result{stdout: b.out.String(), stderr: b.errb.String()}
	var ee *exec.ExitError
	switch {
	case b.err == nil:
	case errors.As(b.err, &ee) && ee.ExitCode() >= 0:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("haplan %v: %v", b.args, b.err)
	}
	t.Logf("haplan %s (background) -> exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(b.args, " "), r.code, r.stdout, r.stderr)
	s.keep(r)
	return r
}

// sampler reads the nodes' process lists (arguments, and the environment
// of every process outside the nodes' inner containers) until stopped, and
// keeps the lines that hold a needle.
type sampler struct {
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	samples int
	session bool // a sample showed one of haplan's SSH sessions
	found   []string
}

// The marker haplan's transport puts in front of every remote command.
const sessionMarker = "HAPLAN_PID"

func sampleProcesses(l *lab.Lab, hosts []string, every time.Duration, needles ...string) *sampler {
	const script = `ps -eo args=
echo ---environ---
c1=$(cat /proc/1/cgroup)
for d in /proc/[0-9]*; do
  [ "$(cat $d/cgroup 2>/dev/null)" = "$c1" ] && tr '\0' '\n' < $d/environ 2>/dev/null
done
true`
	sm := &sampler{stop: make(chan struct{})}
	for _, h := range hosts {
		sm.done.Add(1)
		go func() {
			defer sm.done.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err := l.Exec(ctx, h, nil, "sh", "-c", script)
				cancel()
				if err == nil {
					sm.record(h, string(out), needles)
				}
				select {
				case <-sm.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return sm
}

func (sm *sampler) record(host, out string, needles []string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.samples++
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, sessionMarker) && !strings.Contains(line, "---environ---") && !strings.Contains(line, "ps -eo args") {
			sm.session = true
		}
		for _, n := range needles {
			if strings.Contains(line, n) {
				sm.found = append(sm.found, host+": "+line)
			}
		}
	}
}

// finish stops sampling and reports the samples taken, whether any saw a
// haplan session, and the lines holding a needle.
func (sm *sampler) finish() (samples int, session bool, found []string) {
	select {
	case <-sm.stop:
	default:
		close(sm.stop)
	}
	sm.done.Wait()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.samples, sm.session, sm.found
}

// adminConn is a connection of the DB's admin from this machine that the
// test keeps open (to hold a lock on the server).
func adminConn(t *testing.T, ctx context.Context, l *lab.Lab) *dbsql.Conn {
	t.Helper()
	cfg, err := l.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := dbsql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// shim puts an executable in front of a command on a lab host's PATH
// (/usr/local/bin comes first for SSH sessions), behind haplan's back. The
// script arrives on stdin, so it appears in no process list. The returned
// function removes it and kills what it left sleeping.
func shim(t *testing.T, ctx context.Context, l *lab.Lab, host, name, script string) func() {
	t.Helper()
	path := "/usr/local/bin/" + name
	if _, err := l.Exec(ctx, host, []byte(script), "sh", "-c", "cat > "+path+" && chmod 0755 "+path); err != nil {
		t.Fatalf("install shim %s on %s: %v", name, host, err)
	}
	var once sync.Once
	remove := func() {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = l.Exec(cctx, host, nil, "sh", "-c", fmt.Sprintf(
				"rm -f %[1]s; for f in /tmp/haplan-shim-%[2]s.pids; do [ -e $f ] && kill -9 $(cat $f) 2>/dev/null; rm -f $f /tmp/haplan-shim-%[2]s.*; done; true", path, name))
		})
	}
	t.Cleanup(remove)
	return remove
}

// sleepShim makes `name ARG1` (when ARG1 is trigger, or always when
// trigger is empty) record itself and block for five minutes, once; every
// other call runs the real command.
func sleepShim(name, real, trigger string) string {
	cond := `[ -e /tmp/haplan-shim-` + name + `.armed ]`
	if trigger != "" {
		cond = `[ "$1" = ` + trigger + ` ] && ` + cond
	}
	return fmt.Sprintf(`#!/bin/sh
if %[1]s; then
  rm -f /tmp/haplan-shim-%[2]s.armed
  echo "$$ $PPID" > /tmp/haplan-shim-%[2]s.pids
  touch /tmp/haplan-shim-%[2]s.entered
  exec sleep 300
fi
exec %[3]s "$@"
`, cond, name, real)
}

// pauseShim makes every `name ARG1` with ARG1 = trigger record itself (in
// /tmp/haplan-shim-NAME.entered) and wait secs seconds before it runs the
// real command; every other call runs the real command at once.
func pauseShim(name, real, trigger string, secs int) string {
	return fmt.Sprintf(`#!/bin/sh
if [ "$1" = %[1]s ]; then
  echo "$$" >> /tmp/haplan-shim-%[2]s.entered
  sleep %[3]d
fi
exec %[4]s "$@"
`, trigger, name, secs, real)
}

// holdShim makes every `name ARG1` with ARG1 = trigger record itself (in
// /tmp/haplan-shim-NAME.entered) and wait until
// /tmp/haplan-shim-NAME.release exists (two minutes at most) before it runs
// the real command.
func holdShim(name, real, trigger string) string {
	return fmt.Sprintf(`#!/bin/sh
if [ "$1" = %[1]s ]; then
  echo "$$" >> /tmp/haplan-shim-%[2]s.entered
  i=0
  while [ ! -e /tmp/haplan-shim-%[2]s.release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
fi
exec %[3]s "$@"
`, trigger, name, real)
}

// armShim installs a sleep shim that blocks once.
func armShim(t *testing.T, ctx context.Context, l *lab.Lab, host, name, real, trigger string) func() {
	t.Helper()
	remove := shim(t, ctx, l, host, name, sleepShim(name, real, trigger))
	sh(t, ctx, l, host, "rm -f /tmp/haplan-shim-"+name+".entered; touch /tmp/haplan-shim-"+name+".armed")
	return remove
}

// waitShim waits until haplan is blocked in a sleep shim.
func waitShim(t *testing.T, ctx context.Context, l *lab.Lab, host, name string, b *bgHaplan) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := l.Exec(ctx, host, nil, "test", "-e", "/tmp/haplan-shim-"+name+".entered"); err == nil {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("haplan exited before it reached %s on %s\n--- stdout\n%s--- stderr\n%s", name, host, b.out.String(), b.errb.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("haplan did not reach %s on %s", name, host)
		}
	}
}
