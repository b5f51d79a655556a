package transporttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haplan/haplan/transport"
)

// recorder is a testing.TB that keeps the failures it is given, to test
// AssertExpectationsMet itself.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestRecordsEveryCommandInOrder(t *testing.T) {
	r := New("rs1")
	r.On(Regexp(`^echo `))
	ctx := context.Background()
	cmds := []transport.Cmd{
		{Line: "echo a"},
		{Line: "echo b", Stdin: []byte("secret"), Mutates: true, Timeout: time.Minute},
		{Line: "echo c", Stdin: []byte{}},
	}
	for _, c := range cmds {
		if _, err := r.Run(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got := r.Calls()
	if len(got) != len(cmds) {
		t.Fatalf("recorded %d commands, want %d", len(got), len(cmds))
	}
	for i, c := range cmds {
		g := got[i]
		if g.Line != c.Line || string(g.Stdin) != string(c.Stdin) || g.Mutates != c.Mutates || g.Timeout != c.Timeout {
			t.Errorf("call %d = %+v, want %+v", i, g, c)
		}
		if (g.Stdin == nil) != (c.Stdin == nil) {
			t.Errorf("call %d: stdin nil-ness %v, want %v", i, g.Stdin == nil, c.Stdin == nil)
		}
	}
	// The record is a copy: the caller's buffer may be reused.
	cmds[1].Stdin[0] = 'X'
	if string(r.Calls()[1].Stdin) != "secret" {
		t.Error("the recorded stdin aliases the caller's buffer")
	}
	if got := strings.Join(r.Lines(), ","); got != "echo a,echo b,echo c" {
		t.Errorf("Lines = %s", got)
	}
	r.AssertExpectationsMet(t)
}

func TestConcurrentUse(t *testing.T) {
	r := New("rs1")
	r.On(Regexp(`^n `)).Stdout("ok")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := r.Run(context.Background(), transport.Cmd{Line: fmt.Sprintf("n %d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, l := range r.Lines() {
		seen[l] = true
	}
	if len(seen) != 50 {
		t.Errorf("recorded %d distinct commands, want 50", len(seen))
	}
}

func TestMatchingOrderAndCounts(t *testing.T) {
	r := New("rs1")
	ctx := context.Background()
	first := r.On(Line("stat x")).Stdout("one").Once()
	rest := r.On(Regexp(`^stat `)).Stdout("many")
	mut := r.On(Func("a mutating rm", func(c transport.Cmd) bool { return strings.HasPrefix(c.Line, "rm ") }).
		And("mutates", func(c transport.Cmd) bool { return c.Mutates }))
	var outs []string
	for range 3 {
		res, err := r.Run(ctx, transport.Cmd{Line: "stat x"})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(res.Stdout))
	}
	if got := strings.Join(outs, ","); got != "one,many,many" {
		t.Errorf("answers = %s, want one,many,many (Once, then the next match)", got)
	}
	if first.Matched() != 1 || rest.Matched() != 2 {
		t.Errorf("matched %d and %d, want 1 and 2", first.Matched(), rest.Matched())
	}
	if _, err := r.Run(ctx, transport.Cmd{Line: "rm x"}); err == nil {
		t.Error("an rm that does not mutate matched a matcher that wants Mutates")
	}
	if _, err := r.Run(ctx, transport.Cmd{Line: "rm x", Mutates: true}); err != nil {
		t.Error(err)
	}
	if mut.Matched() != 1 {
		t.Errorf("And matcher matched %d, want 1", mut.Matched())
	}
}

func TestNonZeroExitIsAProcessError(t *testing.T) {
	r := New("rs1")
	r.On(Line("docker pull 'x'")).Stdout("partial").Stderr("line1\nmanifest unknown\n").Exit(1)
	res, err := r.Run(context.Background(), transport.Cmd{Line: "docker pull 'x'", Mutates: true})
	var pe *transport.ProcessError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %T %v, want *transport.ProcessError", err, err)
	}
	if pe.Host != "rs1" || pe.Command != "docker pull 'x'" || pe.ExitCode != 1 || pe.Stderr != "line1\nmanifest unknown\n" {
		t.Errorf("ProcessError = %+v", pe)
	}
	if res.ExitCode != 1 || string(res.Stdout) != "partial" || string(res.Stderr) != "line1\nmanifest unknown\n" {
		t.Errorf("Result = %+v; the real client returns it with the error", res)
	}
	want := `rs1: command "docker pull 'x'" exited with status 1: line1 | manifest unknown`
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestRedaction(t *testing.T) {
	r := New("rs1")
	r.SetRedact(func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") })
	r.On(Regexp(`^login`)).Stderr("bad password hunter2").Exit(2)
	_, err := r.Run(context.Background(), transport.Cmd{Line: "login hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "***") {
		t.Errorf("error %v: the command and stderr are not redacted", err)
	}
	// ReadOnly refuses a mutating command before the double sees it, and
	// names it redacted, as it does for a *transport.Client.
	_, err = transport.ReadOnly(r).Run(context.Background(), transport.Cmd{Line: "rm hunter2", Mutates: true})
	if !errors.Is(err, transport.ErrReadOnly) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ReadOnly: %v", err)
	}
	if n := len(r.Calls()); n != 1 {
		t.Errorf("the double saw %d commands, want 1 (ReadOnly refuses before running)", n)
	}
}

func TestUnexpectedAndUnmet(t *testing.T) {
	r := New("rs1")
	r.On(Line("used"))
	r.On(Line("never"))
	r.On(Line("optional")).Maybe()
	r.On(Line("twice")).Times(2)
	ctx := context.Background()
	for _, l := range []string{"used", "twice", "surprise"} {
		_, err := r.Run(ctx, transport.Cmd{Line: l, Mutates: l == "surprise"})
		if l == "surprise" {
			var ue *UnexpectedError
			if !errors.As(err, &ue) || ue.Host != "rs1" || ue.Cmd.Line != "surprise" {
				t.Errorf("unexpected command: err = %v", err)
			}
			if !strings.Contains(err.Error(), `"surprise"`) || !strings.Contains(err.Error(), "rs1") {
				t.Errorf("message %q does not name the host and command", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
	if u := r.Unexpected(); len(u) != 1 || u[0].Line != "surprise" {
		t.Errorf("Unexpected = %+v", u)
	}
	rec := &recorder{TB: t}
	r.AssertExpectationsMet(rec)
	got := strings.Join(rec.errs, "\n")
	for _, want := range []string{`unexpected command "surprise" (mutates true)`, `line "never", never run`, `line "twice" 2 time(s), got 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("AssertExpectationsMet did not report %q; reported:\n%s", want, got)
		}
	}
	if len(rec.errs) != 3 {
		t.Errorf("reported %d failures, want 3:\n%s", len(rec.errs), got)
	}
}

func TestHangTimesOutLikeTheClient(t *testing.T) {
	r := New("rs1")
	r.On(Regexp(`^docker pull`)).Hang()
	start := time.Now()
	_, err := r.Run(context.Background(), transport.Cmd{Line: "docker pull 'x'", Timeout: 20 * time.Millisecond})
	var te *transport.TimeoutError
	if !errors.As(err, &te) || te.Host != "rs1" || te.Command != "docker pull 'x'" || te.After != 20*time.Millisecond {
		t.Fatalf("err = %v, want a *transport.TimeoutError after 20ms", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("a TimeoutError is a DeadlineExceeded")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("returned before the timeout")
	}
	// No Timeout of its own: the runner's command timeout.
	r.SetCommandTimeout(10 * time.Millisecond)
	if _, err := r.Run(context.Background(), transport.Cmd{Line: "docker pull 'y'"}); !errors.As(err, &te) || te.After != 10*time.Millisecond {
		t.Errorf("err = %v, want a timeout after the runner's 10ms", err)
	}
	// The caller's context ending first is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err = r.Run(ctx, transport.Cmd{Line: "docker pull 'z'", Timeout: time.Hour})
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) || !strings.Contains(err.Error(), "rs1") {
		t.Errorf("err = %v, want one wrapping context.Canceled naming rs1", err)
	}
	// A context already done runs nothing.
	if _, err := r.Run(ctx, transport.Cmd{Line: "never matched"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v on a done context", err)
	}
	if len(r.Unexpected()) != 0 {
		t.Error("a command on a done context counted as unexpected")
	}
}

func TestErrAnswer(t *testing.T) {
	r := New("rs1")
	lost := &transport.ConnectionLostError{Host: "rs1", Command: "x", Reason: "the host closed it"}
	r.On(Line("x")).Err(lost)
	res, err := r.Run(context.Background(), transport.Cmd{Line: "x"})
	if err != lost || res.ExitCode != -1 {
		t.Errorf("Run = %+v, %v; want the given error and exit -1", res, err)
	}
}

func TestDial(t *testing.T) {
	r := New("rs1")
	d, ok := transport.DialerOf(transport.ReadOnly(r))
	if !ok {
		t.Fatal("DialerOf does not find the double behind ReadOnly")
	}
	_, err := d.DialContext(context.Background(), "unix", "/var/run/docker.sock")
	if !errors.Is(err, ErrDialRefused) || !strings.Contains(err.Error(), "rs1: dial /var/run/docker.sock through ssh") {
		t.Errorf("default dial: %v", err)
	}
	r.OnDial(func(_ context.Context, network, addr string) (net.Conn, error) {
		if addr != "127.0.0.1:8080" {
			return nil, errors.New("connection refused")
		}
		c, s := net.Pipe()
		go func() { s.Write([]byte("hi")); s.Close() }()
		return c, nil
	})
	c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil || string(b) != "hi" {
		t.Errorf("read %q, %v", b, err)
	}
	c.Close()
	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused dial: %v", err)
	}
	want := "unix /var/run/docker.sock,tcp 127.0.0.1:8080,tcp 127.0.0.1:9"
	if got := strings.Join(r.Dials(), ","); got != want {
		t.Errorf("Dials = %s, want %s", got, want)
	}
}
