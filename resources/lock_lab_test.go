//go:build lab

package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/manifests"
)

func labEnv(t *testing.T) *Env {
	t.Helper()
	dir, err := lab.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(dir)
	if err != nil {
		t.Fatalf("the lab is not up (make lab): %v", err)
	}
	c, ds := manifests.Load(l.Manifest)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	c.Name = "locktest" // its own lock, whatever else runs on the lab
	e, err := NewEnv(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestLockOnLab(t *testing.T) {
	ctx := context.Background()
	a, b := labEnv(t), labEnv(t)
	me := LockHolder{User: "alice", Machine: "ops1", PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second), Command: "haplan apply"}
	unlock, err := a.Lock(ctx, me, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, LockHolder{User: "bob"}, 0)
	var held *LockHeldError
	if !errors.As(err, &held) {
		t.Fatalf("second lock: %v, want *LockHeldError", err)
	}
	if held.Holder == nil || held.Holder.User != me.User || held.Holder.PID != me.PID || !held.Holder.Since.Equal(me.Since) || !held.Holder.Live || held.Holder.ID == 0 {
		t.Fatalf("holder %+v, want %+v, live, with its lock ID", held.Holder, me)
	}
	// A second run that waits gets the lock once the first releases it.
	got := make(chan error, 1)
	go func() {
		unlock, err := b.Lock(ctx, LockHolder{User: "patient"}, 20*time.Second)
		if err == nil {
			err = unlock(ctx)
		}
		got <- err
	}()
	waitHeld(t, ctx, b, "patient") // it waits on the server, not in a loop
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the waiting run: %v", err)
	}
	unlockB, err := b.Lock(ctx, LockHolder{User: "bob"}, 0)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := unlockB(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockReleasedWhenHolderDies: a haplan killed with SIGKILL cannot
// release its lock; the server must, once the connection is gone.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	if os.Getenv("HAPLAN_LOCK_HOLDER") == "1" {
		e := labEnv(t)
		if _, err := e.Lock(context.Background(), LockHolder{User: "doomed", PID: os.Getpid()}, 0); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("LOCKED\n")
		time.Sleep(time.Hour)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockReleasedWhenHolderDies$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HAPLAN_LOCK_HOLDER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "LOCKED\n" {
		cmd.Process.Kill()
		t.Fatalf("holder did not take the lock: %q %v", buf, err)
	}
	e := labEnv(t)
	ctx := context.Background()
	var held *LockHeldError
	if _, err := e.Lock(ctx, LockHolder{User: "next"}, 0); !errors.As(err, &held) || held.Holder == nil || held.Holder.User != "doomed" {
		t.Fatalf("while the holder lives: %v, want held by doomed", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		unlock, err := e.Lock(ctx, LockHolder{User: "next"}, 0)
		if err == nil {
			unlock(ctx)
			return
		}
		if !errors.As(err, &held) || time.Now().After(deadline) {
			t.Fatalf("lock of a killed holder never released: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestLockHolderThatRecordsNothing: a holder that runs no statement (a
// hung or suspended haplan) is still named, by its database session, and
// force-unlock ends that session.
func TestLockHolderThatRecordsNothing(t *testing.T) {
	ctx := context.Background()
	a, b := labEnv(t), labEnv(t)
	db, err := a.adminDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", a.lockName()).Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK = %d, %v", got, err)
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, LockHolder{User: "bob"}, 0)
	var held *LockHeldError
	if !errors.As(err, &held) || held.Holder == nil {
		t.Fatalf("lock held by a silent session: %v, want *LockHeldError with a holder", err)
	}
	want := fmt.Sprintf("database session %d of root from ", id)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	h, err := b.LockStatus(ctx)
	if err != nil || h == nil || !strings.Contains(h.String(), want) || h.ID != id || h.Live {
		t.Fatalf("LockStatus = %+v, %v; want the session named, lock ID %d, not live", h, err, id)
	}
	var moved *LockMovedError
	if _, err := b.ForceUnlock(ctx, id+1000); !errors.As(err, &moved) {
		t.Fatalf("ForceUnlock of another ID: %v, want *LockMovedError", err)
	}
	if now, err := b.ForceUnlock(ctx, id); err != nil || now != nil {
		t.Fatalf("ForceUnlock: %v, held by %v after it; want released and free", err, now)
	}
	unlock, err := b.Lock(ctx, LockHolder{User: "bob"}, 0)
	if err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitHeld waits until a session of the lab's database runs GET_LOCK for
// e's lock (a run waiting for it), up to 10 s.
func waitHeld(t *testing.T, ctx context.Context, e *Env, who string) {
	t.Helper()
	db, err := e.adminDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK(%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited for the lock", who)
		}
	}
}
