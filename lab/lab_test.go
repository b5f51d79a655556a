//go:build lab

package lab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
)

// faultHost is the agent host the fault tests break; server nodes are left
// alone because other packages' lab tests use them.
const faultHost = "h3"

// theLab reuses a lab that is up (whatever its size) or brings up the
// default one.
func theLab(t *testing.T) *Lab {
	t.Helper()
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if l, err := Load(dir); err == nil {
		return l
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := Up(ctx, Options{Nodes: 3, Spares: 2, Hosts: 3, Log: t.Logf})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return l
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sshRun runs a command on a lab host with OpenSSH's client, strict host
// key checking, the lab key and the lab's known_hosts.
func sshRun(ctx context.Context, l *Lab, ip, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "ssh",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+l.SSH.KnownHostsFile, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=5", "-i", l.SSH.IdentityFile, "-p", fmt.Sprint(l.SSH.Port),
		l.SSH.User+"@"+ip, command)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestLabSSHStrictEveryHost(t *testing.T) {
	l := theLab(t)
	for _, h := range l.Hosts {
		if !h.Role.HasSSH() || h.Name == faultHost {
			continue
		}
		t.Run(h.Name, func(t *testing.T) {
			t.Parallel()
			out, err := sshRun(testCtx(t), l, h.IP, "hostname; stat -c '%U %a' /root/.ssh/authorized_keys")
			if err != nil {
				t.Fatalf("ssh %s: %v\n%s", h.Name, err, out)
			}
			if diff := cmp.Diff(h.Name+"\nroot 600\n", out); diff != "" {
				t.Errorf("hostname / authorized_keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLabDockerPullOnNode(t *testing.T) {
	l := theLab(t)
	nodes := l.ByRole(RoleNode)
	if len(nodes) == 0 {
		t.Fatal("lab has no nodes")
	}
	n := nodes[len(nodes)-1]
	out, err := sshRun(testCtx(t), l, n.IP, "docker pull "+RancherImage+" && docker image inspect --format '{{index .RepoTags 0}}' "+RancherImage)
	if err != nil {
		t.Fatalf("docker pull on %s: %v\n%s", n.Name, err, out)
	}
	if !strings.HasSuffix(out, RancherImage+"\n") {
		t.Errorf("pulled image not tagged %s:\n%s", RancherImage, out)
	}
}

func TestLabDBAdmin(t *testing.T) {
	l := theLab(t)
	ctx := testCtx(t)
	dsn, err := l.AdminDSN()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var maxConn int
	if err := db.QueryRowContext(ctx, "SELECT @@max_connections").Scan(&maxConn); err != nil {
		t.Fatalf("admin login from this machine: %v", err)
	}
	if maxConn != 151 {
		t.Errorf("max_connections = %d, want the default 151", maxConn)
	}
	// The admin can create databases, as haplan needs; the lab itself never
	// creates the cattle database (haplan may have by now).
	name := fmt.Sprintf("haplab_test_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database as admin: %v", err)
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE "+name); err != nil {
		t.Fatalf("drop database as admin: %v", err)
	}
	var grants string
	if err := db.QueryRowContext(ctx, "SHOW GRANTS FOR CURRENT_USER()").Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants, "WITH GRANT OPTION") {
		t.Errorf("admin cannot grant: %s", grants)
	}
	pw, err := readSecret(l.DB.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := l.Exec(ctx, "db", nil, "ps", "-eo", "args")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ps), pw) {
		t.Error("the admin password is visible in the db host's process list")
	}
}

func TestLabHAProxyInstalled(t *testing.T) {
	l := theLab(t)
	out, err := sshRun(testCtx(t), l, l.IP("lb"), "haproxy -v | head -1; test -x /etc/init.d/haproxy && echo initd")
	if err != nil {
		t.Fatalf("ssh lb: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "HAProxy version 2.") || !strings.Contains(out, "initd") {
		t.Errorf("HAProxy not installed as expected:\n%s", out)
	}
}

func TestLabPartitionHealAgent(t *testing.T) {
	l := theLab(t)
	ctx := testCtx(t)
	h, err := l.Host(faultHost)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Partition(ctx, faultHost); err != nil {
		t.Fatal(err)
	}
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = l.Heal(context.Background(), faultHost)
		}
	})
	if err := sshBanner(ctx, h.IP); err == nil {
		t.Errorf("sshd on partitioned %s still reachable", faultHost)
	}
	if st := statusOf(t, l, faultHost); st.Connected || st.State != "running" {
		t.Errorf("status of partitioned host = %+v, want running and partitioned", st)
	}
	if err := l.Heal(ctx, faultHost); err != nil {
		t.Fatal(err)
	}
	healed = true
	if err := waitSSH(ctx, h); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	if out, err := sshRun(ctx, l, h.IP, "hostname"); err != nil || out != faultHost+"\n" {
		t.Errorf("ssh after heal: %v\n%s", err, out)
	}
}

func TestLabKillStartAgent(t *testing.T) {
	l := theLab(t)
	ctx := testCtx(t)
	h, _ := l.Host(faultHost)
	if err := l.Kill(ctx, faultHost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Start(context.Background(), faultHost) })
	if err := sshBanner(ctx, h.IP); err == nil {
		t.Errorf("sshd on killed %s still reachable", faultHost)
	}
	if st := statusOf(t, l, faultHost); st.State != "exited" || st.SSH != "no" {
		t.Errorf("status of killed host = %+v, want exited, sshd no", st)
	}
	if err := l.Start(ctx, faultHost); err != nil {
		t.Fatal(err)
	}
	// Host keys survive a restart: strict checking still passes.
	if out, err := sshRun(ctx, l, h.IP, "hostname"); err != nil || out != faultHost+"\n" {
		t.Errorf("ssh after start: %v\n%s", err, out)
	}
}

func TestLabRegenerateHostKey(t *testing.T) {
	l := theLab(t)
	ctx := testCtx(t)
	h, _ := l.Host(faultHost)
	if err := l.RegenerateHostKey(ctx, faultHost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.RefreshKnownHosts(context.Background()); err != nil {
			t.Errorf("refresh known_hosts: %v", err)
		}
	})
	out, err := sshRun(ctx, l, h.IP, "true")
	if err == nil || !strings.Contains(out, "Host key verification failed") {
		t.Errorf("strict ssh after rekey: err %v, output:\n%s", err, out)
	}
	if err := l.RefreshKnownHosts(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := sshRun(ctx, l, h.IP, "hostname"); err != nil {
		t.Errorf("ssh after refresh: %v\n%s", err, out)
	}
}

// TestLabUpIdempotent: a second Up of the same size keeps every container
// and the SSH trust material.
func TestLabUpIdempotent(t *testing.T) {
	l := theLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	before := containerIDs(t)
	key, _ := os.ReadFile(l.SSH.IdentityFile)
	secret, _ := os.ReadFile(l.DB.AdminPasswordFile)
	_, err := Up(ctx, Options{Nodes: len(l.ByRole(RoleNode)), Spares: len(l.ByRole(RoleSpare)), Hosts: len(l.ByRole(RoleAgent)), Dir: l.Dir, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, containerIDs(t)); diff != "" {
		t.Errorf("second up changed containers (-before +after):\n%s", diff)
	}
	key2, _ := os.ReadFile(l.SSH.IdentityFile)
	secret2, _ := os.ReadFile(l.DB.AdminPasswordFile)
	if string(key) != string(key2) || string(secret) != string(secret2) {
		t.Error("second up replaced the client key or the admin secret")
	}
}

func containerIDs(t *testing.T) string {
	t.Helper()
	out, err := docker(context.Background(), "ps", "-a", "--filter", "label="+LabelKey+"=1", "--format", "{{.Names}} {{.ID}}")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statusOf(t *testing.T, l *Lab, name string) HostStatus {
	t.Helper()
	sts, err := l.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return HostStatus{}
}
