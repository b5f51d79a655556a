package resources

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/plans"
	"github.com/haplan/haplan/rancherapi"
	"github.com/haplan/haplan/transport"
)

// Nodes that left the manifest (replaced by a machine at another address,
// or removed) leave two things behind (docs/rancher-1.0-ha.md section 9):
// their System HA host, "reconnecting" for ever, and their database grant.
// ha.prune removes the first (and stops rancher-ha on the old machine if
// it still answers), db.prune the second. A node that is only down is in
// the manifest still, and never touched.

// haPrune removes System HA hosts that no node of the manifest is.
type haPrune struct {
	base
}

type haPruneState struct {
	Started bool      `json:"started"`
	APIDown bool      `json:"api_down,omitempty"`
	Why     string    `json:"-"`
	Left    []leftOne `json:"left,omitempty"`
	// MembersUnread: the cluster table could not be read (why in
	// MembersWhy), so departed members without a host were not looked for.
	MembersUnread bool   `json:"members_unread,omitempty"`
	MembersWhy    string `json:"-"`
}

type leftOne struct {
	// ID is the machine's System HA host; empty for a member of the
	// cluster that has none (its host was removed).
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	// Running: the old machine answered over SSH (at its cluster IP,
	// with the manifest's ssh defaults) and runs rancher-ha.
	Running bool `json:"running"`
	// Unchecked: the old machine could not be asked (it does not answer,
	// or refuses haplan's SSH login); NotChecked says why.
	Unchecked  bool   `json:"unchecked,omitempty"`
	NotChecked string `json:"-"`
	// SameAs names the machine of the manifest that answered at the
	// address: the same SSH host key, so the same machine (a node whose
	// old cluster IP is still configured on it). Nothing is stopped or
	// removed there.
	SameAs string `json:"same_as,omitempty"`
	// Unsure: it answered, but whether it is a machine of the manifest
	// cannot be told (NotChecked says why): nothing is done there.
	Unsure bool `json:"unsure,omitempty"`
}

// uncheckedWarnings say, for every departed machine haplan could not ask,
// what that leaves: a machine that comes back running rancher-ha rejoins
// the cluster until a plan stops it.
func (st haPruneState) uncheckedWarnings() []string {
	var out []string
	if st.APIDown {
		out = append(out, "System HA could not be listed ("+st.Why+"): machines that left the manifest were looked for in the cluster table only")
	}
	if st.MembersUnread {
		out = append(out, "the cluster table could not be read ("+st.MembersWhy+"): a machine that left the manifest and still runs rancher-ha without a System HA host would not be seen")
	}
	for _, l := range st.Left {
		if l.Unchecked {
			out = append(out, fmt.Sprintf("%s left the manifest and cannot be checked (%s): whether it runs rancher-ha is unknown and nothing is stopped or removed there; if it comes back running rancher-ha it rejoins the cluster, and the next plan stops it", l.Address, l.NotChecked))
		}
	}
	return out
}

// clusterIPs are the manifest's nodes' cluster IPs.
func (e *Env) clusterIPs() []string {
	var out []string
	for _, n := range e.c.Nodes {
		out = append(out, n.ClusterIP)
	}
	return out
}

func (s *haPrune) Probe(ctx context.Context) (engine.State, error) {
	return s.env.departed(ctx)
}

// departed are the System HA hosts that no node of the manifest is, and
// whether their machines still run rancher-ha: shared by one plan's
// probes (ha.retire and ha.prune), read afresh by every re-check.
func (e *Env) departed(ctx context.Context) (haPruneState, error) {
	return sharedRead(ctx, &e.facts, "departed-nodes", perPlan, e.readDeparted, nil)
}

func (e *Env) readDeparted(ctx context.Context) (haPruneState, error) {
	f, err := e.scripts(ctx)
	if err != nil {
		return haPruneState{}, err
	}
	if err := f.settled(); err != nil {
		return haPruneState{}, err
	}
	if !f.generated() {
		return haPruneState{}, nil
	}
	hosts, _, err := onClusterAPI(ctx, e, func(ctx context.Context, api *rancherapi.Client) ([]rancherapi.Host, error) {
		hosts, err := api.HAHosts(ctx)
		if errors.Is(err, rancherapi.ErrNoHAProject) {
			return nil, nil
		}
		return hosts, err
	})
	st := haPruneState{Started: true}
	if err != nil {
		// The cluster table is read all the same: a departed machine
		// running rancher-ha must be stopped before any node starts.
		st.APIDown, st.Why = true, err.Error()
	}
	ips := e.clusterIPs()
	for _, h := range hosts {
		if len(h.Addresses) == 0 || slices.Contains(ips, h.Addresses[0]) {
			continue
		}
		one := leftOne{ID: h.ID, Address: h.Addresses[0], State: h.State}
		if !e.isManifestMachine(one.Address) {
			// (A node whose cluster IP changed: the old record goes, the
			// machine is the node itself and keeps running.)
			e.checkOldMachine(ctx, &one)
		}
		st.Left = append(st.Left, one)
	}
	// A departed machine whose host was removed has no host any more (its
	// agent was deactivated with it, so its reports bring none back), but
	// if it runs rancher-ha again (a dead node switched on) it is a member
	// of the cluster: cluster-manager's table names its cluster IP.
	members, err := e.memberIPs(ctx)
	if err != nil {
		st.MembersUnread, st.MembersWhy = true, err.Error()
	}
	for _, ip := range members {
		if slices.ContainsFunc(st.Left, func(l leftOne) bool { return l.Address == ip }) || slices.Contains(ips, ip) || e.isManifestMachine(ip) {
			continue
		}
		one := leftOne{Address: ip, State: "member of the cluster, no System HA host"}
		e.checkOldMachine(ctx, &one)
		if !one.Running && !one.Unchecked {
			// A row of a machine that runs no rancher-ha: cluster-manager
			// forgets it within two heartbeats. Kept out, so that a saved
			// plan does not go stale for it.
			continue
		}
		st.Left = append(st.Left, one)
	}
	sort.Slice(st.Left, func(i, j int) bool {
		if st.Left[i].ID != st.Left[j].ID {
			return st.Left[i].ID < st.Left[j].ID
		}
		return st.Left[i].Address < st.Left[j].Address
	})
	return st, nil
}

// checkOldMachine asks a machine that left the manifest whether it runs
// rancher-ha, once; first whether it is a machine of the manifest at
// another address (manifestTwin).
func (e *Env) checkOldMachine(ctx context.Context, one *leftOne) {
	var status string
	r, err := e.runner(ctx, e.oldMachine(one.Address))
	if err == nil {
		if one.SameAs, err = e.manifestTwin(ctx, r); one.SameAs != "" {
			return
		}
		one.Unsure = err != nil
	}
	if err == nil {
		status, _, err = containerStatus(ctx, r, layout.HA)
	}
	one.Running = status == "running"
	if err != nil {
		one.Unchecked, one.NotChecked = true, err.Error()
	}
}

// manifestTwin names the node or host of the manifest that is the same
// machine as r: an address that left the manifest can still be configured
// on a machine that is in it (a node's old cluster IP), and cleaning it as
// a departed machine would stop that node. The same machine is told by its
// SSH host keys: the public keys in /etc/ssh (every type: a connection
// negotiates only one, which need not be the same type at two addresses),
// or, when none can be read there, the key the connection verified.
// Machines cloned with the same host keys look like one: the departed one
// is then left as it is, never the other way round. "" when no machine of
// the manifest is r's; an error when that cannot be told (a machine of the
// manifest whose keys cannot be read could be
// it; one that does not answer at its own address is not counted): the
// caller then removes nothing there.
func (e *Env) manifestTwin(ctx context.Context, r transport.Runner) (string, error) {
	keys, err := hostKeys(ctx, r)
	if err != nil {
		return "", err
	}
	negotiated := transport.HostKeyOf(r)
	if keys == "" && negotiated == "" {
		return "", errors.New("it shows no SSH host key to tell it by")
	}
	ts := make([]target, 0, len(e.c.Nodes)+len(e.c.Hosts))
	for _, n := range e.c.Nodes {
		ts = append(ts, nodeTarget(n))
	}
	for _, h := range e.c.Hosts {
		ts = append(ts, hostTarget(h))
	}
	type seen struct {
		keys, negotiated string
		down             bool // it does not answer at its address
		err              error
	}
	got := make([]seen, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() {
			// Once per plan and machine: every departed address asks.
			v, err := sharedRead(ctx, &e.facts, "ssh-host-keys/"+t.name, perPlan, func(ctx context.Context) (seen, error) {
				mr, err := e.runner(ctx, t)
				if err != nil {
					return seen{down: true}, nil
				}
				k, err := hostKeys(ctx, mr)
				return seen{keys: k, negotiated: transport.HostKeyOf(mr)}, err
			}, nil)
			v.err = err
			got[i] = v
		})
	}
	wg.Wait()
	var unsure []error
	for i, t := range ts {
		g := got[i]
		switch {
		case g.down:
			// A machine that does not answer at its own address is taken
			// not to answer at another: the departed address is judged
			// by the machines that answer (as a departed node whose
			// replacement is down is).
		case g.err != nil:
			unsure = append(unsure, fmt.Errorf("%s: %w", t.name, g.err))
		case keys != "" && g.keys == keys, negotiated != "" && g.negotiated == negotiated:
			return t.name, nil
		}
	}
	if len(unsure) > 0 {
		return "", fmt.Errorf("whether it is a machine of the manifest cannot be told: %w", errors.Join(unsure...))
	}
	return "", nil
}

// hostKeys are a machine's SSH host public keys (type and key, sorted,
// comments left out); "" when there are none to read.
func hostKeys(ctx context.Context, r transport.Runner) (string, error) {
	out, err := run(ctx, r, "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true", false)
	if err != nil {
		return "", err
	}
	var keys []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			keys = append(keys, f[0]+" "+f[1])
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n"), nil
}

// memberIPs are the cluster IPs in cluster-manager's table (none before
// the cluster first started: no table yet).
func (e *Env) memberIPs(ctx context.Context) ([]string, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := e.readMembers(ctx, db)
	if me := (*mysql.MySQLError)(nil); errors.As(err, &me) && me.Number == errNoSuchTable {
		return nil, nil
	}
	var out []string
	for _, m := range rows {
		if m.ip != "" && !slices.Contains(out, m.ip) {
			out = append(out, m.ip)
		}
	}
	return out, err
}

// errNoSuchTable is MySQL's ER_NO_SUCH_TABLE.
const errNoSuchTable = 1146

// isManifestMachine reports an address that is a node's (address or
// cluster IP) or a host's: never a machine that left the manifest.
func (e *Env) isManifestMachine(addr string) bool {
	for _, n := range e.c.Nodes {
		if n.Address == addr || n.ClusterIP == addr {
			return true
		}
	}
	for _, h := range e.c.Hosts {
		if h.Address == addr || h.AgentIP == addr {
			return true
		}
	}
	return false
}

// oldMachine is how a node that left the manifest is reached: with the
// manifest's ssh defaults, and once (a machine that left is often gone
// for good: it is asked, not waited for).
func (e *Env) oldMachine(address string) target {
	return target{name: "old node " + address, address: address, ssh: e.c.SSH, once: true}
}

// haRetire stops rancher-ha on machines that left the manifest and still
// run it, before any node starts or stops: a departed node that keeps
// running stays a member of the cluster (its heartbeats keep its index,
// its ZooKeeper its vote), so a replacement could not take its place and a
// resized cluster would form with it. It runs after script.generate: a
// resize asks the running cluster for its new script first.
type haRetire struct {
	base
}

func (s *haRetire) Probe(ctx context.Context) (engine.State, error) {
	st, err := s.env.departed(ctx)
	if err != nil || !st.anyRunning() {
		return st, err
	}
	// A resize restarts every node anyway (and is refused while one does
	// not answer); otherwise the nodes that keep running must hold a
	// quorum once the departed ones stop. A resize is told by how the
	// running nodes were started, not by the scripts they hold: the
	// re-check just before this step's Apply comes after script.generate
	// wrote the new script.
	f, err := s.env.scripts(ctx)
	if err != nil || s.env.resize(f) != 0 {
		return st, err
	}
	var running, silent []string
	for _, n := range s.env.c.Nodes {
		hs, err := s.env.haState(ctx, n)
		if _, down := engine.IsUnreachable(err); down {
			silent = append(silent, n.Name)
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.env.resizing(hs) || otherScript(hs) {
			return st, nil // every node restarts with the new script
		}
		if hs.Container == "running" {
			running = append(running, n.Name)
		}
	}
	if need := len(s.env.c.Nodes)/2 + 1; len(running) < need {
		return nil, &QuorumError{Stopping: st.runningAddrs(), Running: running, Silent: silent, Size: len(s.env.c.Nodes), Need: need}
	}
	return st, nil
}

func (st haPruneState) anyRunning() bool { return len(st.runningAddrs()) > 0 }

func (st haPruneState) runningAddrs() []string {
	var out []string
	for _, l := range st.Left {
		if l.Running && !slices.Contains(out, l.Address) {
			out = append(out, l.Address)
		}
	}
	return out
}

// QuorumError refuses to stop machines that left the manifest when the
// nodes that would keep running are fewer than a quorum of the cluster:
// ZooKeeper (and with it the cluster) stops answering until a majority is
// back, and a replacement cannot join it meanwhile.
type QuorumError struct {
	Stopping        []string
	Running, Silent []string
	Size, Need      int
}

func (e *QuorumError) Error() string {
	running := "none"
	if len(e.Running) > 0 {
		running = strings.Join(e.Running, ", ")
	}
	msg := fmt.Sprintf("refusing to stop rancher-ha on %s, which left the manifest: %d of the %d nodes would keep running (%s), and a %d-node cluster needs %d (its ZooKeeper quorum)",
		strings.Join(e.Stopping, ", "), len(e.Running), e.Size, running, e.Size, e.Need)
	if len(e.Silent) > 0 {
		msg += fmt.Sprintf("; %s did not answer: bring it back first", strings.Join(e.Silent, ", "))
	}
	return msg
}

func (s *haRetire) Diff(cur engine.State) plans.Change {
	st := cur.(haPruneState)
	addrs := st.runningAddrs()
	var c plans.Change
	if len(addrs) == 0 {
		c = s.change(plans.NoOp, "no machine that left the manifest runs rancher-ha")
		if len(st.uncheckedWarnings()) > 0 {
			c.Reason = "no machine that left the manifest and answers runs rancher-ha"
		}
	} else {
		c = s.change(plans.Delete, fmt.Sprintf("stop rancher-ha on %s, which left the manifest, before the nodes start: it would stay a member of the cluster", strings.Join(addrs, ", ")),
			plans.Detail{Name: "machines", Old: strings.Join(addrs, ", "), New: "rancher-ha stopped, " + nodeFiles + " removed"})
	}
	c.Warnings = st.uncheckedWarnings()
	return c
}

func (s *haRetire) Apply(ctx context.Context, _ plans.Change) error {
	st, err := s.env.departed(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range st.Left {
		if !l.Running {
			continue
		}
		r, err := s.env.runner(ctx, s.env.oldMachine(l.Address))
		if err == nil {
			engine.Progress(ctx, "stopping rancher-ha on %s, which left the manifest, and removing %s there", l.Address, nodeFiles)
			_, err = run(ctx, r, cleanNode(true), true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.Address, err))
		}
	}
	return errors.Join(errs...)
}

func (s *haPrune) Diff(cur engine.State) plans.Change {
	st := cur.(haPruneState)
	if st.APIDown {
		c := s.change(plans.NoOp, "not checked: the cluster's API does not answer")
		c.Warnings = []string{"System HA cannot be listed (" + st.Why + "): a plan once the cluster's API answers removes the nodes that left the manifest"}
		return c
	}
	var addrs []string
	var ds []plans.Detail
	for _, l := range st.Left {
		if l.ID == "" {
			continue // no host to remove (ha.retire stops the machine)
		}
		addrs = append(addrs, l.Address)
		gone := "System HA host removed; the machine's rancher-ha containers and " + nodeFiles + " removed"
		switch {
		case l.Unsure:
			gone = "System HA host removed; the machine answers, but whether it is a machine of the manifest cannot be told: nothing removed there"
		case l.Unchecked:
			gone = "System HA host removed; the machine cannot be reached: nothing removed there"
		case l.SameAs != "":
			gone = "System HA host removed; the machine at that address is " + l.SameAs + " (the same SSH host keys): nothing removed there"
		case s.env.isManifestMachine(l.Address):
			gone = "System HA host removed (the address is still a machine of the manifest)"
		}
		ds = append(ds, plans.Detail{Name: l.Address, Old: fmt.Sprintf("System HA host %s (%s)", l.ID, l.State), New: gone})
	}
	if len(addrs) == 0 {
		return s.change(plans.NoOp, "every System HA host is a node of the manifest")
	}
	return s.change(plans.Delete, fmt.Sprintf("%s left the manifest: remove from System HA", strings.Join(addrs, ", ")), ds...)
}

func (s *haPrune) Apply(ctx context.Context, _ plans.Change) error {
	api, err := s.env.clusterAPI(ctx)
	if err != nil {
		return err
	}
	hosts, err := api.HAHosts(ctx)
	if err != nil {
		return err
	}
	ips := s.env.clusterIPs()
	var errs []string
	for _, h := range hosts {
		if len(h.Addresses) == 0 || slices.Contains(ips, h.Addresses[0]) {
			continue
		}
		if err := s.cleanDeparted(ctx, h.Addresses[0]); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", h.Addresses[0], err))
			continue
		}
		engine.Progress(ctx, "removing System HA host %s (%s)", h.ID, h.Addresses[0])
		if err := removeHost(ctx, api, h, s.env.c.Rancher.Timeouts.Command); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", h.Addresses[0], err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// cleanDeparted removes rancher-ha and the node's files from the machine
// at addr, which left the manifest, when it answers and is no machine of
// the manifest. Otherwise only its System HA host goes.
func (s *haPrune) cleanDeparted(ctx context.Context, addr string) error {
	if s.env.isManifestMachine(addr) {
		return nil // the node itself, at its old cluster IP
	}
	r, err := s.env.runner(ctx, s.env.oldMachine(addr))
	if err != nil {
		return nil // it does not answer: the plan said nothing is removed there
	}
	switch twin, err := s.env.manifestTwin(ctx, r); {
	case err != nil:
		engine.Progress(ctx, "nothing removed on %s: %v; only its System HA host is removed", addr, err)
		return nil
	case twin != "":
		engine.Progress(ctx, "%s answers as %s (the same SSH host keys): only its System HA host is removed", addr, twin)
		return nil
	}
	engine.Progress(ctx, "removing rancher-ha and %s from %s, which left the manifest", nodeFiles, addr)
	_, err = run(ctx, r, cleanNode(true), true)
	return err
}

// dbPrune drops the application user at addresses no node has: grants
// haplan made for nodes that left the manifest. Patterns (with % or _)
// and local accounts are never touched.
type dbPrune struct {
	base
}

type dbPruneState struct {
	Stale []string `json:"stale,omitempty"` // hosts of the application user
}

// grantHosts are the hosts the manifest grants the application user.
func (e *Env) grantHosts() []string {
	if len(e.c.Database.GrantHosts) > 0 {
		return e.c.Database.GrantHosts
	}
	var out []string
	for _, n := range e.c.Nodes {
		out = append(out, n.Address)
	}
	return out
}

func (s *dbPrune) Probe(ctx context.Context) (engine.State, error) {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT Host FROM mysql.user WHERE User = ?`, s.env.c.Database.User)
	if err != nil {
		return nil, s.env.dbError("list the application user's hosts", err)
	}
	defer rows.Close()
	want := s.env.grantHosts()
	st := dbPruneState{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, s.env.dbError("list the application user's hosts", err)
		}
		if slices.Contains(want, h) || strings.ContainsAny(h, "%_") || h == "localhost" || h == "127.0.0.1" || h == "::1" || s.env.isManifestMachine(h) {
			continue
		}
		st.Stale = append(st.Stale, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.env.dbError("list the application user's hosts", err)
	}
	rows.Close()
	// Only what haplan grants: ALL on this cluster's database and nothing
	// else. The same user name at an address granted something more (or
	// another database: a second cluster on a shared server) is not ours.
	var ours []string
	for _, h := range st.Stale {
		only, err := s.onlyOurGrant(ctx, h)
		if err != nil {
			return nil, err
		}
		if only {
			ours = append(ours, h)
		}
	}
	st.Stale = ours
	sort.Strings(st.Stale)
	return st, nil
}

// onlyOurGrant reports whether the application user at host holds ALL on
// this cluster's database and nothing but USAGE besides.
func (s *dbPrune) onlyOurGrant(ctx context.Context, host string) (bool, error) {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return false, err
	}
	d := s.env.c.Database
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SHOW GRANTS FOR %s@%s", quoteString(d.User), quoteString(host)))
	if err != nil {
		return false, s.env.dbError(fmt.Sprintf("show grants for %q@%q", d.User, host), err)
	}
	defer rows.Close()
	ours := false
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return false, s.env.dbError(fmt.Sprintf("show grants for %q@%q", d.User, host), err)
		}
		switch u := strings.ToUpper(g); {
		case strings.HasPrefix(u, "GRANT USAGE ON *.* TO "):
		case grantsAllOn(g, d.Name) && !strings.HasPrefix(g[len("GRANT ALL PRIVILEGES ON "):], "*.*"):
			ours = true
		default:
			return false, nil
		}
	}
	return ours, rows.Err()
}

func (s *dbPrune) Diff(cur engine.State) plans.Change {
	st := cur.(dbPruneState)
	u := s.env.c.Database.User
	if len(st.Stale) == 0 {
		return s.change(plans.NoOp, fmt.Sprintf("every host of user %s is a node's", u))
	}
	var ds []plans.Detail
	for _, h := range st.Stale {
		ds = append(ds, plans.Detail{Name: u + "@" + h, Old: "ALL ON " + s.env.c.Database.Name + ".*", New: "dropped"})
	}
	return s.change(plans.Delete, fmt.Sprintf("no node has the address %s: drop user %s there", strings.Join(st.Stale, ", "), u), ds...)
}

func (s *dbPrune) Apply(ctx context.Context, _ plans.Change) error {
	st, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return err
	}
	for _, h := range st.(dbPruneState).Stale {
		q := fmt.Sprintf("DROP USER %s@%s", quoteString(s.env.c.Database.User), quoteString(h))
		if _, err := db.ExecContext(ctx, q); err != nil {
			return s.env.dbError(fmt.Sprintf("DROP USER %q@%q", s.env.c.Database.User, h), err)
		}
	}
	return nil
}
