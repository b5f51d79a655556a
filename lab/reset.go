package lab

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/go-sql-driver/mysql" // the admin connection of ResetCluster
)

// ResetCluster removes everything haplan creates for a cluster in database
// dbName, so the lab is as fresh as `haplab up` left it: the rancher-ha and
// bootstrap containers, the server image and /var/lib/rancher on the nodes
// and the spares (a test may have made a spare a node);
// on the agent hosts the containers of the agent image (rancher-agent,
// rancher-agent-state and the exited registration containers, all
// labelled io.rancher.container.system by the image), the agent image and
// /var/lib/rancher (the CA and the registration state); HAProxy's
// configuration (stopped) on the LB; the database, which holds the
// stand-in's tokens, agents and hosts too, and the application user at
// every node and spare address. Tests use it to start from scratch; `haplab reset`
// lets a person watch a full install again.
func (l *Lab) ResetCluster(ctx context.Context, dbName string) error {
	// Containers of the agent image, by its label and by name; a stopped
	// dockerd (a killed host) leaves nothing to remove.
	agents := "docker rm -f -v $(docker ps -aq --filter label=" + agentImageLabel + ") rancher-agent rancher-agent-state >/dev/null 2>&1; "
	var nodes []Host
	for _, h := range l.Hosts {
		var script string
		switch h.Role {
		case RoleNode, RoleSpare:
			nodes = append(nodes, h)
			script = agents + "docker rm -f rancher-ha rancher-ha-agent haplan-bootstrap >/dev/null 2>&1; docker rmi -f " + l.RancherImage + " " + NextRancherImage + " " + AgentImage + " " + AgentInstanceImage + " >/dev/null 2>&1; rm -rf /var/lib/rancher; true"
		case RoleAgent:
			script = agents + "docker rmi -f " + AgentImage + " >/dev/null 2>&1; rm -rf /var/lib/rancher; true"
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
