package resources

// The admin connection to the database server (direct, or through a
// node's SSH connection) and its errors.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/redact"
)

// adminConfig is the driver configuration of the admin account. Statements
// are interpolated client-side (InterpolateParams) so passwords travel as
// bound values and never show up in a server-side error.
func (e *Env) adminConfig() *mysql.Config {
	d := e.c.Database
	cfg := mysql.NewConfig()
	cfg.User = d.Admin.User
	cfg.Passwd = e.admPW.Reveal()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.InterpolateParams = true
	cfg.Logger = driverLogger{e.log}
	if e.adminViaSSH() {
		// An SSH channel has no deadlines, and the driver would fail every
		// read that set one: the callers' contexts bound the time instead.
		cfg.ReadTimeout, cfg.WriteTimeout = 0, 0
		// The dial may try more than one node, each with its own SSH
		// connect timeout and retries.
		cfg.Timeout = max(cfg.Timeout, 2*e.c.Rancher.Timeouts.SSH)
		cfg.DialFunc = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return e.dialFromNodes(ctx, addr)
		}
	}
	return cfg
}

// adminViaSSH reports whether the admin connection goes through a node's
// SSH connection: database.admin.via, or by default when the first node is
// reached through a bastion (the manifest's or ssh_config's ProxyJump).
func (e *Env) adminViaSSH() bool {
	switch e.c.Database.Admin.Via {
	case manifests.AdminViaSSH:
		return true
	case manifests.AdminDirect:
		return false
	}
	if len(e.c.Nodes) == 0 {
		return false
	}
	cfg, err := e.sshConfig(nodeTarget(e.c.Nodes[0]))
	return err == nil && cfg.Bastion != nil
}

// driverLogger sends the MySQL driver's own messages to the debug log
// instead of stderr.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Debug("mysql driver", "msg", fmt.Sprint(v...)) }

// adminDB is the admin connection, opened on first use.
func (e *Env) adminDB(ctx context.Context) (*sql.DB, error) {
	e.dbOnce.Do(func() {
		conn, err := mysql.NewConnector(e.adminConfig())
		if err != nil {
			e.dbErr = fmt.Errorf("database %s: %w", e.dbAddr(), err)
			return
		}
		e.db = sql.OpenDB(conn)
		e.db.SetMaxOpenConns(8)
	})
	if e.dbErr != nil {
		return nil, e.dbErr
	}
	// Through SSH the dial may pass over a node that does not answer.
	pctx, cancel := context.WithTimeout(ctx, max(10*time.Second, e.adminConfig().Timeout))
	defer cancel()
	if err := e.db.PingContext(pctx); err != nil {
		// The driver's errors name users and addresses, never passwords;
		// every output is redacted on top. Keep the type for errors.As.
		return nil, &DBError{Addr: e.dbAddr(), User: e.c.Database.Admin.User, Err: err, red: e.red}
	}
	return e.db, nil
}

// dbError reports a statement of the admin connection that failed.
func (e *Env) dbError(op string, err error) error {
	return &DBError{Addr: e.dbAddr(), User: e.c.Database.Admin.User, Op: op, Err: err, red: e.red}
}

func (e *Env) dbAddr() string {
	return net.JoinHostPort(e.c.Database.Host, strconv.Itoa(e.c.Database.Port))
}

// DBError is a failure of the admin account on the database server: to
// reach it, or (Op set) of a statement. The driver's own messages name
// neither the server nor, for a connection the server dropped, what
// happened; they are redacted, as statements are interpolated client-side.
type DBError struct {
	Addr, User string
	Op         string // e.g. "CREATE USER for 'cattle'@'10.0.0.11'"; empty when connecting failed
	Err        error
	red        *redact.Redactor
}

func (e *DBError) Error() string {
	msg := e.red.String(e.Err.Error())
	if errors.Is(e.Err, mysql.ErrInvalidConn) || errors.Is(e.Err, driver.ErrBadConn) {
		msg += " (the connection to the database server was lost)"
	}
	if e.Op == "" {
		return fmt.Sprintf("database %s as %q (database.admin): %s", e.Addr, e.User, msg)
	}
	return fmt.Sprintf("database %s: %s: %s", e.Addr, e.Op, msg)
}
func (e *DBError) Unwrap() error { return e.Err }
