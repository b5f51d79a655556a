package preflight

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/transport"
)

// MySQL server error numbers the checks tell apart.
const (
	errDBAccessDenied = 1044 // user authenticated, no privileges on the database
	errAccessDenied   = 1045 // bad user/password, or no such user for this client host
	// errAccessDeniedNoPassword is MariaDB's answer when the account for
	// this client host authenticates otherwise (unix_socket, say).
	errAccessDeniedNoPassword = 1698
	errBadDB                  = 1049 // unknown database
)

// database checks the admin account (from here) and the application
// account (from the bootstrap node) concurrently.
func (p *pass) database(ctx context.Context) {
	d := p.c.Database
	addr := net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	var (
		wg     sync.WaitGroup
		admin  *sql.DB
		app    appResult
		appRan bool
	)
	wg.Go(func() {
		admin, _ = check(ctx, p, task{"mysql.admin", "db", "admin credentials (database.admin) on " + addr}, func(ctx context.Context) (*sql.DB, []Finding) {
			return p.adminChecks(ctx, addr)
		})
	})
	node := p.c.Rancher.BootstrapNode
	wg.Go(func() {
		app, appRan = check(ctx, p, task{"mysql.app", node, "application credentials from " + node + " to " + addr}, func(ctx context.Context) (appResult, []Finding) {
			// From the bootstrap node, or the first other node that
			// answers: one node down does not hide the database's answer.
			var err error
			for _, n := range p.appNodes() {
				var db *sql.DB
				if db, err = p.env.AppDB(ctx, n); err == nil {
					err = db.PingContext(ctx)
				}
				var ce *transport.ConnectError
				if errors.As(err, &ce) {
					continue
				}
				if err == nil {
					return appResult{}, []Finding{{Severity: OK, Check: "mysql.app", Host: n,
						Message: fmt.Sprintf("application credentials (database.user %q) accepted by %s from %s", d.User, addr, n)}}
				}
				return appResult{err: err, node: n}, nil
			}
			return appResult{}, []Finding{{Severity: Warning, Check: "mysql.app", Host: node,
				Message: fmt.Sprintf("application credentials not checked: no node answers over SSH (%v)", err)}}
		})
	})
	wg.Wait()
	if !appRan || app.err == nil {
		return
	}
	// The app account failed; the admin view says whether it exists yet.
	check(ctx, p, task{"mysql.app", node, "looking up the application user with the admin account"}, func(ctx context.Context) (struct{}, []Finding) {
		return struct{}{}, []Finding{p.appFailure(ctx, admin, addr, app.node, app.err)}
	})
}

// appResult is the application account's connect error, nil on success,
// and the node it was tried from.
type appResult struct {
	err  error
	node string
}

// adminChecks pings with the admin account, then reads the server version
// and max_connections.
func (p *pass) adminChecks(ctx context.Context, addr string) (*sql.DB, []Finding) {
	d := p.c.Database
	what := fmt.Sprintf("admin credentials (database.admin, user %q) on %s", d.Admin.User, addr)
	db, err := p.env.AdminDB(ctx)
	if err == nil {
		err = db.PingContext(ctx)
	}
	var unreachable interface{ UnreachableHost() string }
	if errors.As(err, &unreachable) {
		// The database is reached through a node's SSH connection, and
		// that node did not answer: nothing is known of the database.
		return nil, []Finding{{Severity: Warning, Check: "mysql.admin", Host: "db",
			Message: fmt.Sprintf("%s not checked: the database is reached through %s over SSH (database.admin.via ssh), which did not answer", what, unreachable.UnreachableHost()),
			Hint:    "see that host's own findings"}}
	}
	if err != nil {
		f := p.failed("mysql.admin", "db", what+" failed", err)
		f.Hint = dbHint(err, "database.admin.user and database.admin.password, and that the account may log in from where haplan connects: this machine with database.admin.via direct, the nodes with ssh")
		return nil, []Finding{f}
	}
	out := []Finding{{Severity: OK, Check: "mysql.admin", Host: "db", Message: what + " accepted"}}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		out = append(out, p.failed("mysql.version", "db", "cannot read the server version", err))
	} else {
		out = append(out, Finding{Severity: Info, Check: "mysql.version", Host: "db", Message: "MySQL server " + version})
	}
	var maxConns int
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.max_connections").Scan(&maxConns); err != nil {
		out = append(out, p.failed("max_connections", "db", "cannot read max_connections", err))
	} else {
		out = append(out, evalMaxConnections(maxConns, len(p.c.Nodes)))
	}
	return db, out
}

// appFailure explains why the application account failed from node. An
// account that does not exist yet is expected before the first apply.
func (p *pass) appFailure(ctx context.Context, admin *sql.DB, addr, node string, err error) Finding {
	d := p.c.Database
	what := fmt.Sprintf("application credentials (database.user %q, database.password) from %s to %s", d.User, node, addr)
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		f := p.failed("mysql.app", node, what+" failed", err)
		f.Hint = fmt.Sprintf("the Rancher server on %s connects from there: check routing and firewalls from %s to %s and MySQL's bind-address", node, node, addr)
		return f
	}
	switch me.Number {
	case errBadDB:
		return Finding{Severity: Info, Check: "mysql.app", Host: node,
			Message: fmt.Sprintf("%s accepted; database %q does not exist yet and will be created", what, d.Name)}
	case errDBAccessDenied:
		return Finding{Severity: Info, Check: "mysql.app", Host: node,
			Message: fmt.Sprintf("%s accepted; the grants on %q do not exist yet and will be created", what, d.Name)}
	case errAccessDenied:
		hosts := p.grantHosts(node)
		if admin != nil {
			exists, qerr := userExists(ctx, admin, d.User, hosts)
			if qerr == nil && !exists {
				return Finding{Severity: Info, Check: "mysql.app", Host: node,
					Message: fmt.Sprintf("database user %q does not exist yet for %v; it will be created", d.User, hosts)}
			}
			if qerr == nil {
				// haplan owns this account: a different password in the
				// manifest is a change db.grant plans, not a blocker. It is
				// still worth a warning: servers already running hold the
				// old password inside their rancher-ha.sh.
				return Finding{Severity: Warning, Check: "mysql.app", Host: node,
					Message: what + " rejected, and the user exists: db.grant will set the manifest's password",
					Hint:    "if the cluster already runs, its nodes were started with the old password (encrypted in rancher-ha.sh) and cannot reconnect after a restart; rotate the password only together with a rebuild, or fix the secret to the current password"}
			}
		}
		return Finding{Severity: Error, Check: "mysql.app", Host: node,
			Message: what + " rejected: access denied (could not ask the admin account whether the user exists yet)",
			Hint:    "fix the admin credentials first; then a user that does not exist yet is reported as \"will be created\""}
	}
	f := p.failed("mysql.app", node, what+" failed", err)
	f.Hint = dbHint(err, "database.user and database.password")
	return f
}

// appNodes are the nodes to check the application account from: the
// bootstrap node first.
func (p *pass) appNodes() []string {
	out := []string{p.c.Rancher.BootstrapNode}
	for _, n := range p.c.Nodes {
		if n.Name != p.c.Rancher.BootstrapNode {
			out = append(out, n.Name)
		}
	}
	return out
}

// grantHosts are the MySQL host patterns the application user is created
// for that apply to node: the manifest's grantHosts, else node's address.
func (p *pass) grantHosts(node string) []string {
	if gh := p.c.Database.GrantHosts; len(gh) > 0 {
		return gh
	}
	if n, ok := p.c.Node(node); ok {
		return []string{n.Address}
	}
	return nil
}

func userExists(ctx context.Context, db *sql.DB, user string, hosts []string) (bool, error) {
	for _, h := range hosts {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?", user, h).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func dbHint(err error, creds string) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == errAccessDenied || me.Number == errAccessDeniedNoPassword) {
		return "check " + creds
	}
	return "check database.host and database.port, that MySQL runs and accepts TCP connections, and firewalls"
}
