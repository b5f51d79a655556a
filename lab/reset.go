package lab

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/go-sql-driver/mysql" // the admin connection of ResetCluster
)

// ResetCluster removes everything haplan creates for a cluster in database
// dbName, so the lab is as fresh as `haplab up` left it: the rancher-ha and
// bootstrap containers, the server image and /var/lib/rancher on the nodes,
// the CA on the agent hosts, HAProxy's configuration (stopped) on the LB,
// the database and the application user at every node address. Tests use it
// to start from scratch; `haplab reset` lets a person watch a full install
// again.
func (l *Lab) ResetCluster(ctx context.Context, dbName string) error {
	var nodes []Host
	for _, h := range l.Hosts {
		var script string
		switch h.Role {
		case RoleNode:
			nodes = append(nodes, h)
			script = "docker rm -f rancher-ha rancher-ha-agent haplan-bootstrap >/dev/null 2>&1; docker rmi -f " + l.RancherImage + " " + AgentImage + " " + AgentInstanceImage + " >/dev/null 2>&1; rm -rf /var/lib/rancher; true"
		case RoleAgent:
			script = "rm -rf /var/lib/rancher"
		case RoleLB:
			script = "pkill -x haproxy; rm -f /etc/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg.haplan-new; true"
		default:
			continue
		}
		if out, err := l.Exec(ctx, h.Name, nil, "sh", "-c", script); err != nil {
			return fmt.Errorf("reset %s: %w: %s", h.Name, err, out)
		}
	}
	dsn, err := l.AdminDSN()
	if err != nil {
		return err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	stmts := []string{fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", dbName)}
	for _, n := range nodes {
		stmts = append(stmts, fmt.Sprintf("DROP USER IF EXISTS 'cattle'@'%s'", n.IP))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("reset the database: %s: %w", s, err)
		}
	}
	return nil
}
