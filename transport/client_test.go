package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestRun(t *testing.T) {
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cmd     Cmd
		want    Result
		wantErr *ProcessError
	}{
		{
			name: "stdout",
			cmd:  Cmd{Line: "echo hello; echo world"},
			want: Result{Stdout: []byte("hello\nworld\n")},
		},
		{
			name: "stdin",
			cmd:  Cmd{Line: "tr a-z A-Z", Stdin: []byte("quiet\n")},
			want: Result{Stdout: []byte("QUIET\n")},
		},
		{
			name:    "exit code and stderr",
			cmd:     Cmd{Line: "echo out; echo broke >&2; exit 3"},
			want:    Result{Stdout: []byte("out\n"), Stderr: []byte("broke\n"), ExitCode: 3},
			wantErr: &ProcessError{Host: "h1", Command: "echo out; echo broke >&2; exit 3", ExitCode: 3, Stderr: "broke\n"},
		},
		{
			name:    "command not found",
			cmd:     Cmd{Line: "exec /nonexistent/haplan-cmd 2>/dev/null"},
			want:    Result{ExitCode: 127},
			wantErr: &ProcessError{Host: "h1", Command: "exec /nonexistent/haplan-cmd 2>/dev/null", ExitCode: 127},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Run(context.Background(), tt.cmd)
			var pe *ProcessError
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != nil {
				if !errors.As(err, &pe) {
					t.Fatalf("Run error = %v, want *ProcessError", err)
				}
				if diff := cmp.Diff(tt.wantErr, pe); diff != "" {
					t.Errorf("ProcessError (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpBytesAsString); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpBytesAsString = cmp.Transformer("string", func(b []byte) string { return string(b) })

func TestRunRedactsSecrets(t *testing.T) {
	f := newFixture(t)
	const secret = "hunter2-s3cret"
	p := newTestPool(t, PoolOptions{Redact: func(s string) string { return strings.ReplaceAll(s, secret, "***") }})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(context.Background(), Cmd{Line: "echo " + secret + " >&2; exit 1"})
	var pe *ProcessError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *ProcessError", err)
	}
	for name, s := range map[string]string{"Error()": err.Error(), "Command": pe.Command, "Stderr": pe.Stderr} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks the secret: %q", name, s)
		}
	}
	if !strings.Contains(pe.Stderr, "***") {
		t.Errorf("Stderr = %q, want the redaction marker", pe.Stderr)
	}
}

func TestRunContextCancel(t *testing.T) {
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, Cmd{Line: "echo started; exec sleep 600"})
		res <- err
	}()
	// Cancelling at whatever stage Run has reached must still give
	// context.Canceled and leave the client usable.
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	// The connection stays usable after a cancelled session.
	got, err := c.Run(context.Background(), Cmd{Line: "echo still-alive"})
	if err != nil || string(got.Stdout) != "still-alive\n" {
		t.Fatalf("Run after cancel: %q, %v", got.Stdout, err)
	}
}

func TestRunCancelKillsRunningCommand(t *testing.T) {
	tests := []struct {
		name          string
		ignoreSignals bool
		sudo          bool
	}{
		{name: "server honours signal"},
		// Like OpenSSH for root: "session signalling requires privilege
		// separation"; the pid reported on stderr is used instead.
		{name: "server ignores signal", ignoreSignals: true},
		{name: "server ignores signal, sudo", ignoreSignals: true, sudo: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.ignoreSignals = tt.ignoreSignals
			if tt.sudo {
				bin := t.TempDir()
				writeTestFile(t, bin+"/sudo", "#!/bin/sh\nshift\nexec \"$@\"\n", 0o755)
				f.srv.env = append(f.srv.env, "PATH="+bin+":/usr/bin:/bin")
				f.cfg.Sudo = true
			}
			p := newTestPool(t, PoolOptions{})
			c, err := p.Client(context.Background(), f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			pidFile := filepath.Join(t.TempDir(), "pid")
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan error, 1)
			go func() {
				_, err := c.Run(ctx, Cmd{Line: "sh -c 'echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; exec sleep 600'"})
				res <- err
			}()
			var pid int
			for pid == 0 {
				if b, err := os.ReadFile(pidFile); err == nil {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-res; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run after cancel = %v, want context.Canceled", err)
			}
			// Run returns once the kill was sent; delivery is
			// asynchronous, so poll until the process is gone.
			for alive(pid) {
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// alive reports a running process; a zombie counts as dead (an orphaned one
// may never be reaped in a container without an init).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(after, "Z")
}

func TestStderrWithoutPidMarker(t *testing.T) {
	var buf bytes.Buffer
	p := &pidWriter{w: &buf, found: make(chan struct{})}
	p.Write([]byte("short"))
	p.flush()
	if buf.String() != "short" {
		t.Errorf("stderr = %q, want %q", buf.String(), "short")
	}
	buf.Reset()
	p = &pidWriter{w: &buf, found: make(chan struct{})}
	p.Write([]byte("HAPLAN_PID=4"))
	p.Write([]byte("2\nreal error\n"))
	p.flush()
	if buf.String() != "real error\n" || p.pid != 42 {
		t.Errorf("stderr = %q, pid %d; want the marker removed and pid 42", buf.String(), p.pid)
	}
}

func TestSudoWrapping(t *testing.T) {
	f := newFixture(t)
	// A fake sudo that checks for -n and runs the rest.
	bin := t.TempDir()
	writeTestFile(t, bin+"/sudo", "#!/bin/sh\n[ \"$1\" = -n ] || exit 99\nshift\nexec \"$@\"\n", 0o755)
	f.srv.env = append(f.srv.env, "PATH="+bin+":/usr/bin:/bin")
	f.cfg.Sudo = true
	p := newTestPool(t, PoolOptions{})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Run(context.Background(), Cmd{Line: `echo "it's" $((1+1))`})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Stdout) != "it's 2\n" {
		t.Errorf("stdout = %q", got.Stdout)
	}
	execs, _ := f.srv.seen()
	want := []string{`echo HAPLAN_PID=$$ >&2; exec sudo -n sh -c 'echo "it'\''s" $((1+1))'`}
	if diff := cmp.Diff(want, execs); diff != "" {
		t.Errorf("exec payloads (-want +got):\n%s", diff)
	}
}

func TestClientReuse(t *testing.T) {
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Client(context.Background(), f.cfg)
			if err != nil {
				errs <- err
				return
			}
			got, err := c.Run(context.Background(), Cmd{Line: fmt.Sprintf("echo %d", i)})
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf("%d\n", i); string(got.Stdout) != want {
				errs <- fmt.Errorf("run %d: stdout %q, want %q", i, got.Stdout, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if conns, hs := f.srv.counts(); conns != 1 || hs != 1 {
		t.Errorf("server saw %d connections, %d handshakes; want 1, 1", conns, hs)
	}
}

func TestPoolRedialsClosedClient(t *testing.T) {
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	c1, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c1.Close()
	<-c1.dead
	c2, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c1 == c2 {
		t.Fatal("pool returned the closed client")
	}
	if _, err := c2.Run(context.Background(), Cmd{Line: "true"}); err != nil {
		t.Fatal(err)
	}
	if conns, _ := f.srv.counts(); conns != 2 {
		t.Errorf("server saw %d connections, want 2", conns)
	}
}

func TestPoolRedialsAfterServerDrop(t *testing.T) {
	f := newFixture(t)
	p := newTestPool(t, PoolOptions{})
	c1, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.dropAll()
	<-c1.dead
	if _, err := c1.Run(context.Background(), Cmd{Line: "true"}); err == nil {
		t.Fatal("Run on a dropped connection succeeded")
	}
	c2, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c2.Run(context.Background(), Cmd{Line: "echo back"}); err != nil || string(got.Stdout) != "back\n" {
		t.Fatalf("Run after redial = %q, %v", got.Stdout, err)
	}
}

func TestPoolClosed(t *testing.T) {
	f := newFixture(t)
	p := NewPool(PoolOptions{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(context.Background(), f.cfg); !errors.Is(err, errPoolClosed) {
		t.Fatalf("Client after Close = %v, want errPoolClosed", err)
	}
}

// A command cut off by the end of its connection says so, and that it may
// have completed, instead of x/crypto's "exited without exit status".
func TestRunConnectionLost(t *testing.T) {
	c, srv := testClient(t)
	started := filepath.Join(t.TempDir(), "started")
	line := "touch " + Quote(started) + "; sleep 10"
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), Cmd{Line: line, Mutates: true})
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.dropAll()
	err := <-done
	var lost *ConnectionLostError
	if !errors.As(err, &lost) {
		t.Fatalf("Run cut by a dropped connection = %v, want *ConnectionLostError", err)
	}
	for _, want := range []string{"h1: connection lost while running", "sleep 10", "may or may not have completed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestKexAlgorithmsReachTheHandshake: a server that offers only
// ecdh-sha2-nistp256 is reached with haplan's defaults, and refused by a
// client whose KexAlgorithms leaves the NIST curves out.
func TestKexAlgorithmsReachTheHandshake(t *testing.T) {
	client, keyFile := newKey(t)
	srv := startServerWith(t, func(c *ssh.ServerConfig) {
		c.KeyExchanges = []string{ssh.KeyExchangeECDHP256}
	}, client.PublicKey())
	h, port := srv.hostPort(t)
	cfg := Config{Host: "h1", Address: h, Port: port, User: "tester", IdentityFile: keyFile,
		KnownHostsFile: srv.knownHosts(t, srv.hostKey.PublicKey(), false), ConnectTimeout: 5 * time.Second}
	ctx := context.Background()
	if _, err := newTestPool(t, PoolOptions{}).Client(ctx, cfg); err != nil {
		t.Fatalf("default key exchanges: %v", err)
	}
	var err error
	if cfg.KexAlgorithms, err = ResolveKex("-ecdh-sha2-*"); err != nil {
		t.Fatal(err)
	}
	_, err = newTestPool(t, PoolOptions{Retries: -1}).Client(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "key exchange") {
		t.Fatalf("KexAlgorithms without the NIST curves: err = %v, want a key exchange failure", err)
	}
}

func TestPidWriterReadFrom(t *testing.T) {
	long := strings.Repeat("warning: something long\n", 100)
	for _, in := range []string{"HAPLAN_PID=4242\n" + long, "no pid here\n" + long, "short"} {
		var stderr bytes.Buffer
		p := &pidWriter{w: &stderr, found: make(chan struct{})}
		n, err := p.ReadFrom(iotest.OneByteReader(strings.NewReader(in)))
		p.flush()
		if err != nil || n != int64(len(in)) {
			t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(in))
		}
		want, wantPID := in, 0
		if rest, ok := strings.CutPrefix(in, "HAPLAN_PID=4242\n"); ok {
			want, wantPID = rest, 4242
		}
		if stderr.String() != want || p.pid != wantPID {
			t.Errorf("input %.20q: stderr %d bytes, pid %d; want %d bytes, pid %d", in, stderr.Len(), p.pid, len(want), wantPID)
		}
	}
}

// A command that never returns fails within its timeout, naming the host
// and the command, and is killed; with every session slot taken by such
// commands, the kills still go through (they take no slot), and the
// connection is usable afterwards.
func TestRunTimeoutKillsWithoutAFreeSlot(t *testing.T) {
	f := newFixture(t)
	f.srv.ignoreSignals = true // the kill must come from the pid, in a session of its own
	p := newTestPool(t, PoolOptions{MaxSessions: 2})
	c, err := p.Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	errs := make(chan error, 2)
	start := time.Now()
	for i := range 2 {
		pidFile := filepath.Join(dir, strconv.Itoa(i))
		go func() {
			_, err := c.Run(context.Background(), Cmd{Line: "sh -c 'echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; exec sleep 600'", Timeout: 500 * time.Millisecond})
			errs <- err
		}()
	}
	for range 2 {
		err := <-errs
		var te *TimeoutError
		if !errors.As(err, &te) || te.Host != f.cfg.Host || !strings.Contains(te.Command, "sleep 600") || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run of a hung command = %v, want a TimeoutError naming %s and the command", err, f.cfg.Host)
		}
		if !strings.Contains(err.Error(), "did not finish within 500ms") {
			t.Errorf("message %q does not say the limit", err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the timeouts took %s", d)
	}
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs after its command timed out", pid)
			}
		}
	}
	if got, err := c.Run(context.Background(), Cmd{Line: "echo still-alive"}); err != nil || string(got.Stdout) != "still-alive\n" {
		t.Fatalf("Run after the timeouts: %q, %v", got.Stdout, err)
	}
}

// Without a Timeout, the pool's CommandTimeout applies.
func TestRunPoolCommandTimeout(t *testing.T) {
	f := newFixture(t)
	c, err := newTestPool(t, PoolOptions{CommandTimeout: 300 * time.Millisecond}).Client(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var te *TimeoutError
	if _, err := c.Run(context.Background(), Cmd{Line: "exec sleep 600"}); !errors.As(err, &te) || te.After != 300*time.Millisecond {
		t.Fatalf("Run = %v, want a TimeoutError after 300ms", err)
	}
}
