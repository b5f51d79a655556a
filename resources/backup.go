package resources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/layout"
)

// Backups are Rancher's documented dump (v1.6 FAQ; docs/rancher-1.0-ha.md
// section 9): mysqldump of the Rancher database, run on this machine
// against the database server reached the way the admin account reaches
// it (directly, or through a node's SSH connection), with the admin
// account's password in a 0600 option file, never on a command line.

// DumpFlags are the options Rancher documents for its database dump.
var DumpFlags = []string{"-c", "-e", "--default-character-set=utf8", "--single-transaction", "--skip-set-charset", "--add-drop-database"}

// BackupInfo describes a dump, for the record kept next to it.
type BackupInfo struct {
	Cluster         string    `json:"cluster"`
	Database        string    `json:"database"`
	ServerImage     string    `json:"server_image"`
	ClusterSize     int       `json:"cluster_size"`
	RegistrationURL string    `json:"registration_url"`
	Created         time.Time `json:"created"`
	// SHA256 and Size are the dump's.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Tool is the mysqldump that made it (its --version).
	Tool string `json:"tool"`
}

// ErrNoMysqldump: the mysqldump (or mysql) client is not installed here.
var ErrNoMysqldump = errors.New("mysqldump is not installed on this machine (Debian/Ubuntu: apt-get install mariadb-client)")

// Backup writes a consistent dump of the Rancher database to w. Its
// record names the release that runs (the schema is that release's),
// which before an upgrade is not the manifest's.
func (e *Env) Backup(ctx context.Context, w io.Writer) (*BackupInfo, error) {
	bin, err := exec.LookPath("mysqldump")
	if err != nil {
		return nil, ErrNoMysqldump
	}
	info := &BackupInfo{Cluster: e.c.Name, Database: e.c.Database.Name, ServerImage: e.runningImage(ctx),
		ClusterSize: len(e.c.Nodes), RegistrationURL: e.c.Rancher.HostRegistrationURL, Created: time.Now().UTC()}
	if v, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		info.Tool = strings.TrimSpace(string(v))
	}
	args := append([]string{}, DumpFlags...)
	if strings.Contains(info.Tool, "Ver 8.") && !strings.Contains(info.Tool, "MariaDB") {
		// mysqldump 8 reads column statistics by default, which a 5.x
		// server does not have ("Unknown table 'COLUMN_STATISTICS'").
		args = append(args, "--column-statistics=0")
	}
	args = append(args, "-B", e.c.Database.Name)
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	if err := e.withClient(ctx, bin, args, nil, cw); err != nil {
		return nil, err
	}
	info.SHA256, info.Size = hex.EncodeToString(h.Sum(nil)), cw.n
	return info, nil
}

// Restore loads a dump made by Backup into the database server (the dump
// drops and recreates the database: --add-drop-database -B).
func (e *Env) Restore(ctx context.Context, dump io.Reader) error {
	bin, err := exec.LookPath("mysql")
	if err != nil {
		return fmt.Errorf("mysql is not installed on this machine (Debian/Ubuntu: apt-get install mariadb-client)")
	}
	return e.withClient(ctx, bin, []string{"--default-character-set=utf8"}, dump, io.Discard)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// withClient runs a MySQL client program (mysqldump, mysql) here against
// the database server: a listener on this machine's loopback forwards each
// connection the way the admin account connects, and the client reads the
// admin account from an option file (mode 0600, removed afterwards), so
// the password is in no process list.
func (e *Env) withClient(ctx context.Context, bin string, args []string, stdin io.Reader, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { e.forward(fctx, ln) })

	port := ln.Addr().(*net.TCPAddr).Port
	opt, err := os.CreateTemp("", "haplan-mysql-*.cnf")
	if err != nil {
		return err
	}
	defer os.Remove(opt.Name())
	conf := fmt.Sprintf("[client]\nhost=127.0.0.1\nport=%d\nprotocol=TCP\nuser=%s\npassword=%s\n", port,
		optValue(e.c.Database.Admin.User), optValue(e.admPW.Reveal()))
	// CreateTemp makes it 0600; the chmod says so where a umask might not.
	err = opt.Chmod(0o600)
	if err == nil {
		_, err = opt.WriteString(conf)
	}
	if cerr := opt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the MySQL option file: %w", err)
	}
	cmd := exec.CommandContext(fctx, bin, append([]string{"--defaults-extra-file=" + opt.Name()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := e.red.String(strings.TrimSpace(stderr.String()))
		return fmt.Errorf("%s against database %s: %w: %s", strings.TrimPrefix(bin, "/usr/bin/"), e.dbAddr(), err, msg)
	}
	return nil
}

// optValue quotes a value for a MySQL option file.
func optValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// forward accepts on ln and joins each connection to the database server,
// dialled as the admin account dials it, until ctx ends.
func (e *Env) forward(ctx context.Context, ln net.Listener) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		if e.adminViaSSH() {
			return e.dialFromNodes(ctx, e.dbAddr())
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort(e.c.Database.Host, strconv.Itoa(e.c.Database.Port)))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			up, err := dial(ctx)
			if err != nil {
				e.log.Debug("database forward", "err", err)
				return
			}
			defer up.Close()
			join(ctx, c, up)
		})
	}
}

// join copies between a and b both ways until one side ends or ctx does.
func join(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	a.Close()
	b.Close()
	<-done
}

// runningImage is the image rancher-ha runs on the first node, in
// manifest order, where it runs; the manifest's when none answers.
func (e *Env) runningImage(ctx context.Context) string {
	for _, n := range e.c.Nodes {
		r, err := e.runner(ctx, nodeTarget(n))
		if err != nil {
			continue
		}
		if status, image, err := containerStatus(ctx, r, layout.HA); err == nil && status == "running" {
			return image
		}
	}
	return e.c.Rancher.Image
}
