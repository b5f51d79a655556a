package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/plans"
)

// An upgrade (rancher.image changed) is one outage, in the order upstream
// documents it (docs/rancher-1.0-ha.md section 9): the new image is pulled
// on every node while the old version still runs (image.pull), the
// database is backed up (db.backup), rancher-ha is stopped on every node
// (ha.stop), and only then does any node start the new version, all
// together with the same script (ha.start): cattle migrates the schema on
// start, and old and new versions must never share the database.

// upgradingNodes are the nodes whose rancher-ha exists and runs another
// image than the manifest's, in manifest order, with that image. A node
// that does not answer is left out.
func (e *Env) upgradingNodes(ctx context.Context) (names []string, from map[string]string, err error) {
	from = map[string]string{}
	for _, n := range e.c.Nodes {
		r, err := e.runner(ctx, nodeTarget(n))
		if _, down := engine.IsUnreachable(err); down {
			continue // its own ha.stop and ha.start hold the upgrade back
		}
		if err != nil {
			return nil, nil, err
		}
		status, image, err := containerStatus(ctx, r, layout.HA)
		if _, down := engine.IsUnreachable(err); down {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if status != "absent" && image != e.c.Rancher.Image {
			names = append(names, n.Name)
			from[n.Name] = image
		}
	}
	return names, from, nil
}

// dbBackup backs the database up before an upgrade.
type dbBackup struct {
	base
}

type dbBackupState struct {
	// Upgrading are the nodes that run another image, with it.
	Upgrading map[string]string `json:"upgrading,omitempty"`
	// ResizeFrom is the cluster size of the running cluster's script when
	// the manifest resizes it; 0 otherwise.
	ResizeFrom int `json:"resize_from,omitempty"`
}

func (s *dbBackup) Probe(ctx context.Context) (engine.State, error) {
	_, from, err := s.env.upgradingNodes(ctx)
	if err != nil {
		return nil, err
	}
	st := dbBackupState{Upgrading: from}
	f, err := s.env.scripts(ctx)
	if err != nil {
		return nil, err
	}
	st.ResizeFrom = s.env.resize(f)
	return st, nil
}

func (s *dbBackup) Diff(cur engine.State) plans.Change {
	st := cur.(dbBackupState)
	switch {
	case len(st.Upgrading) > 0:
		return s.change(plans.Create, fmt.Sprintf("back up database %q to .haplan/backups/ next to the manifest before the upgrade to %s: the new version migrates the schema, which cannot be undone",
			s.env.c.Database.Name, s.env.c.Rancher.Image), plans.Detail{Name: "from", New: strings.Join(images(st.Upgrading), ", ")})
	case st.ResizeFrom > 0:
		return s.change(plans.Create, fmt.Sprintf("back up database %q to .haplan/backups/ next to the manifest before the resize from %d to %s (createscript writes ha.cluster.size; every node restarts)",
			s.env.c.Database.Name, st.ResizeFrom, nodeCount(len(s.env.c.Nodes))))
	}
	return s.change(plans.NoOp, "no upgrade or resize: no backup needed")
}

func images(m map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// backupDir is where automatic backups go: .haplan/backups next to the
// manifest.
func (e *Env) backupDir() string { return filepath.Join(e.c.Dir, ".haplan", "backups") }

// keepBackups is how many automatic backups are kept.
const keepBackups = 10

func (s *dbBackup) Apply(ctx context.Context, _ plans.Change) error {
	dir := s.env.backupDir()
	cur, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	why := "pre-upgrade"
	if st := cur.(dbBackupState); len(st.Upgrading) == 0 && st.ResizeFrom > 0 {
		why = "pre-resize"
	}
	path, err := s.env.BackupTo(ctx, dir, why)
	if err != nil {
		return err
	}
	engine.Progress(ctx, "database backed up to %s", path)
	s.env.cmu.Lock()
	s.env.lastBackup = path
	s.env.cmu.Unlock()
	return rotateBackups(dir, s.env.c.Name, why, keepBackups)
}

// BackupTo writes a dump and its record into dir, named by the cluster,
// why and the time (BackupFile). It returns the dump's path.
func (e *Env) BackupTo(ctx context.Context, dir, why string) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.sql", e.c.Name, why, time.Now().UTC().Format("20060102T150405Z")))
	_, err := e.BackupFile(ctx, path)
	return path, err
}

// BackupFile writes a dump to path and its record to path.json, both mode
// 0600; the dump appears under its name only once it is complete.
func (e *Env) BackupFile(ctx context.Context, path string) (*BackupInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	info, err := e.Backup(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return nil, err
	}
	rec, err := json.MarshalIndent(info, "", "  ")
	if err == nil {
		err = os.WriteFile(path+".json", append(rec, '\n'), 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("write the backup's record: %w", err)
	}
	return info, nil
}

// rotateBackups keeps the newest keep automatic dumps of one kind (why:
// "pre-upgrade", "pre-destroy") of a cluster in dir: each kind on its own,
// so the dump just written is always among those kept.
func rotateBackups(dir, cluster, why string, keep int) error {
	matches, err := filepath.Glob(filepath.Join(dir, cluster+"-"+why+"-*.sql"))
	if err != nil || len(matches) <= keep {
		return err
	}
	sort.Strings(matches) // same prefix: the names sort by their time
	for _, m := range matches[:len(matches)-keep] {
		if err := os.Remove(m); err != nil {
			return err
		}
		_ = os.Remove(m + ".json")
	}
	return nil
}

// LastBackup is the dump db.backup took in this run; "" when none.
func (e *Env) LastBackup() string {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	return e.lastBackup
}

// restoreHint says how to go back to the backup taken before this run's
// upgrade, for errors after the nodes were stopped; "" without one.
func (e *Env) restoreHint() string {
	path := e.LastBackup()
	if path == "" {
		return ""
	}
	return fmt.Sprintf("; the database was backed up before this run's stop: haplan restore -f %s %s restores it (with the manifest set back: rancher.image, the nodes)", e.c.Path, path)
}

// removeHAContainers removes rancher-ha and every container
// cluster-manager started after it (rancher-ha-*) on a node: what an
// upgrade, a restore and a node that left the manifest all stop.
const removeHAContainers = `ids=$(docker ps -aq --filter name=^/` + layout.HA + `); [ -z "$ids" ] || docker rm -f $ids >/dev/null`

// haStop stops rancher-ha on a node for an upgrade. The stops are a
// barrier group, as the starts are: all or none (a node that did not
// answer keeps every node running), and every start waits for them.
type haStop struct {
	base
	node manifests.Node
}

var _ engine.Barrier = (*haStop)(nil)

func (s *haStop) BarrierGroup() string { return "ha.stop" }

func (s *haStop) Probe(ctx context.Context) (engine.State, error) {
	return s.env.haState(ctx, s.node)
}

// Diff stops a running rancher-ha that must restart with every other node:
// another image (an upgrade), a script of another cluster size (a
// resize), or another script than its node holds (a resize whose new
// script is written).
func (s *haStop) Diff(cur engine.State) plans.Change {
	st := cur.(haStartState)
	img := s.env.c.Rancher.Image
	switch {
	case st.Container == "absent":
		return s.change(plans.NoOp, "no upgrade or resize on "+s.node.Name)
	case st.Image != img:
		return s.change(plans.Delete, fmt.Sprintf("stop rancher-ha (%s) on %s for the upgrade: the Rancher server is down until every node runs %s", st.Image, s.node.Name, img),
			plans.Detail{Name: "image", Old: st.Image, New: img})
	case s.env.resizing(st):
		return s.change(plans.Delete, fmt.Sprintf("stop rancher-ha on %s for the resize to %s: the Rancher server is down until every node runs the new rancher-ha.sh", s.node.Name, nodeCount(len(s.env.c.Nodes))),
			plans.Detail{Name: "clusterSize", Old: strconv.Itoa(st.StartedSize), New: strconv.Itoa(len(s.env.c.Nodes))})
	case otherScript(st):
		return s.change(plans.Delete, fmt.Sprintf("stop rancher-ha on %s: it was started from another rancher-ha.sh than the cluster's, and restarts with it together with every node that must", s.node.Name),
			plans.Detail{Name: "script", Old: short(st.StartedWith), New: short(st.ScriptDigest), Sensitive: true})
	}
	return s.change(plans.NoOp, "no upgrade or resize on "+s.node.Name)
}

func (s *haStop) Apply(ctx context.Context, _ plans.Change) error {
	r, err := s.env.runner(ctx, nodeTarget(s.node))
	if err != nil {
		return err
	}
	_, err = run(ctx, r, removeHAContainers, true)
	return err
}
