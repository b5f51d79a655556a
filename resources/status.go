package resources

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/haplan/haplan/health"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/rancherapi"
)

// membershipGap is how long Status waits between its two reads of the
// cluster table to see each heartbeat move: cluster-manager bumps it
// every 5 s (cluster/manager.go), so 6 s sees every live member's move.
const membershipGap = 6 * time.Second

// statusLimit bounds a whole status: two SSH connect timeouts with their
// retries, and the membership gap, fit in it.
const statusLimit = 90 * time.Second

// Status reads the cluster's health, read-only and all at once: every
// node over SSH and its own API, the cluster table (twice, a heartbeat
// apart), System HA's hosts and the registered hosts through the API, the
// database's connections, and the load balancer's /ping with its
// certificate. Nothing it cannot read stops it: that is a fact of the
// report. It does not judge (health.Report.Evaluate does).
func (e *Env) Status(ctx context.Context) *health.Report {
	// Everything it reads is bounded: a status that hangs is no status.
	ctx, cancel := context.WithTimeout(ctx, statusLimit)
	defer cancel()
	r := &health.Report{FormatVersion: health.FormatVersion, Cluster: e.c.Name, Checked: time.Now().UTC(), Image: e.c.Rancher.Image}
	r.Nodes = make([]health.Node, len(e.c.Nodes))
	var wg sync.WaitGroup
	for i, n := range e.c.Nodes {
		wg.Go(func() { r.Nodes[i] = e.nodeStatus(ctx, n) })
	}
	wg.Go(func() { e.membersStatus(ctx, r) })
	wg.Go(func() { e.apiStatus(ctx, r) })
	wg.Go(func() { r.Database = e.dbStatus(ctx) })
	wg.Go(func() {
		r.LB.URL = e.c.Rancher.HostRegistrationURL
		leaf, err := e.pingLB(ctx)
		if err != nil {
			r.LB.Err = err.Error()
		} else {
			r.LB.Ping = true
		}
		if leaf != nil {
			r.Certificate = &health.Certificate{Subject: leaf.Subject.CommonName, NotAfter: leaf.NotAfter.UTC()}
		}
	})
	wg.Wait()
	return r
}

func (e *Env) nodeStatus(ctx context.Context, n manifests.Node) health.Node {
	out := health.Node{Name: n.Name, Address: n.Address}
	r, err := e.runner(ctx, nodeTarget(n))
	if err != nil {
		out.Err = err.Error()
		return out
	}
	out.Reachable = true
	if out.Container, out.Image, err = containerStatus(ctx, r, layout.HA); err != nil {
		out.Err = err.Error()
		return out
	}
	api, err := e.apiOn(nodeTarget(n), layout.HAAPIPort)
	if err == nil {
		err = api.Ping(ctx)
	}
	if err != nil {
		out.Err = err.Error()
	} else {
		out.API = true
	}
	return out
}

type memberRow struct {
	id, heartbeat int64
	name, ip      string
	index         int
}

// membersStatus reads cluster-manager's cluster table twice, a heartbeat
// apart. The master is the live member with the lowest id, as
// cluster-manager elects it (cluster/manager.go).
func (e *Env) membersStatus(ctx context.Context, r *health.Report) {
	db, err := e.adminDB(ctx)
	if err != nil {
		r.MembersErr = err.Error()
		return
	}
	first, err := e.readMembers(ctx, db)
	if err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(membershipGap):
		}
	}
	var second []memberRow
	if err == nil {
		second, err = e.readMembers(ctx, db)
	}
	if err != nil {
		r.MembersErr = err.Error()
		return
	}
	before := map[int64]int64{}
	for _, m := range first {
		before[m.id] = m.heartbeat
	}
	master := int64(-1)
	for _, m := range second {
		hb, seen := before[m.id]
		mv := !seen || hb != m.heartbeat
		r.Members = append(r.Members, health.Member{ID: m.id, Name: m.name, IP: m.ip, Index: m.index, Counter: m.heartbeat, Moving: mv})
		if mv && master < 0 {
			master = m.id
		}
	}
	for i := range r.Members {
		r.Members[i].Master = r.Members[i].ID == master
	}
}

func (e *Env) readMembers(ctx context.Context, db *sql.DB) ([]memberRow, error) {
	q := fmt.Sprintf("SELECT id, COALESCE(name,''), heartbeat, ip_address, assigned_index FROM %s.cluster ORDER BY id", quoteIdent(e.c.Database.Name))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, e.dbError("read the cluster table", err)
	}
	defer rows.Close()
	var out []memberRow
	for rows.Next() {
		var m memberRow
		if err := rows.Scan(&m.id, &m.name, &m.heartbeat, &m.ip, &m.index); err != nil {
			return nil, e.dbError("read the cluster table", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// apiStatus reads System HA's hosts and the registered hosts.
func (e *Env) apiStatus(ctx context.Context, r *health.Report) {
	if hs, _, err := onClusterAPI(ctx, e, func(ctx context.Context, api *rancherapi.Client) ([]rancherapi.Host, error) {
		return api.HAHosts(ctx)
	}); err != nil {
		r.SystemHAErr = err.Error()
	} else {
		for _, h := range hs {
			r.SystemHA = append(r.SystemHA, health.Host{ID: h.ID, Hostname: h.Hostname, Addresses: h.Addresses, State: h.State, AgentState: h.AgentState})
		}
	}
	hf, err := e.readRegistered(ctx)
	if err == nil && hf.APIDown != "" {
		err = errors.New(hf.APIDown)
	}
	if err != nil {
		r.HostsErr = err.Error()
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range e.c.Hosts {
		if !h.Register {
			continue
		}
		wg.Go(func() {
			rh := health.RegisteredHost{Name: h.Name, Environment: h.Environment, Agent: "unknown"}
			for _, ph := range hf.ByName[h.Name] {
				if ph.Env.Name == h.Environment {
					x := ph.Host
					rh.Rancher = &health.Host{ID: x.ID, Hostname: x.Hostname, Addresses: x.Addresses, State: x.State, AgentState: x.AgentState}
					break
				}
			}
			if run, err := e.runner(ctx, hostTarget(h)); err == nil {
				if st, _, err := containerStatus(ctx, run, agentContainer); err == nil {
					rh.Agent = st
				}
			}
			mu.Lock()
			r.Hosts = append(r.Hosts, rh)
			mu.Unlock()
		})
	}
	wg.Wait()
	order := map[string]int{}
	for i, h := range e.c.Hosts {
		order[h.Name] = i
	}
	slices.SortFunc(r.Hosts, func(a, b health.RegisteredHost) int { return order[a.Name] - order[b.Name] })
}

// dbStatus reads the connections in use and the limit.
func (e *Env) dbStatus(ctx context.Context) health.Database {
	out := health.Database{Address: net.JoinHostPort(e.c.Database.Host, strconv.Itoa(e.c.Database.Port))}
	db, err := e.adminDB(ctx)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	var name string
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Threads_connected'").Scan(&name, &out.Connections); err != nil {
		out.Err = e.dbError("SHOW GLOBAL STATUS", err).Error()
		return out
	}
	if err := db.QueryRowContext(ctx, "SELECT @@max_connections").Scan(&out.MaxConnections); err != nil {
		out.Err = e.dbError("SELECT @@max_connections", err).Error()
		return out
	}
	out.Reachable = true
	return out
}
