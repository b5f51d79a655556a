package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/resources"
)

func (a *app) backup(ctx context.Context, args []string) int {
	fs := a.newFlags("backup")
	var pf planFlags
	var out string
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.StringVar(&out, "o", "", "write the dump to this file")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	return a.newRun(ctx, "backup", pf).do(load, connect, func(r *run) error {
		path := out
		if path == "" {
			path = defaultBackupPath(r)
		}
		info, err := takeBackup(r, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.o.out, "Backed up database %s of cluster %s to %s (%d bytes, sha256 %s).\nRestore it with:\n  haplan restore -f %s %s\n",
			info.Database, r.m.Name, path, info.Size, info.SHA256[:min(12, len(info.SHA256))], r.pf.file, path)
		return nil
	})
}

// defaultBackupPath is under .haplan/backups/ next to the manifest, named
// by the cluster and the time.
func defaultBackupPath(r *run) string {
	stamp := r.a.now().UTC().Format("20060102T150405Z")
	return filepath.Join(filepath.Dir(r.pf.file), ".haplan", "backups", r.m.Name+"-"+stamp+".sql")
}

// takeBackup writes the dump to path and its record to path.json.
func takeBackup(r *run, path string) (*resources.BackupInfo, error) {
	info, err := r.env.BackupFile(r.ctx, path)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return info, nil
}

// readBackupRecord reads the record a backup keeps next to its dump.
func readBackupRecord(path string) (resources.BackupInfo, error) {
	var info resources.BackupInfo
	b, err := os.ReadFile(path + ".json")
	if errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("%s.json is missing: haplan restores dumps made by haplan backup, which keeps that record next to the dump", path)
	}
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil || info.SHA256 == "" {
		return info, fmt.Errorf("%s.json is not a haplan backup record: %v", path, err)
	}
	return info, nil
}

// restoreRun is restore's part of a run.
type restoreRun struct {
	applyRun
	dump    string
	force   bool
	info    resources.BackupInfo
	cluster *engine.Graph
}

func (a *app) restore(ctx context.Context, args []string) int {
	fs := a.newFlags("restore")
	var pf planFlags
	rr := &restoreRun{}
	fs.StringVar(&pf.file, "f", "cluster.yaml", "the manifest")
	fs.IntVar(&pf.parallelism, "parallelism", 10, "steps run at once")
	fs.BoolVar(&rr.autoApprove, "auto-approve", false, "do not ask for approval")
	fs.BoolVar(&rr.force, "force", false, "restore a dump of another cluster")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(a.stderr, "haplan restore: give one dump file (from haplan backup)")
		return exitError
	}
	rr.dump = pos[0]
	ar := &rr.applyRun
	ar.dump = rr.dump
	return a.newRun(ctx, "restore", pf).do(load, ar.interrupts, rr.readDump, ar.openLog, session, rr.restoreGraph,
		lock, probeOnly, ar.review, ar.approve, ar.walk, rr.clusterGraph, planPhase, ar.review, ar.approve, ar.walk, ar.report)
}

// readDump reads the dump's record and refuses one the manifest cannot
// take: another cluster's (its registration URL: hosts and agents are
// bound to it) unless --force, or another server image than the
// manifest's (the schema is that version's).
func (rr *restoreRun) readDump(r *run) error {
	info, err := readBackupRecord(rr.dump)
	if err != nil {
		return err
	}
	c := r.m
	if info.Database != c.Database {
		// The dump recreates its own database (-B --add-drop-database):
		// loaded here it would replace that one, not database.name.
		return fmt.Errorf("%s is a dump of database %q; this manifest's database.name is %q: it would replace %q, not %q; nothing was changed", rr.dump, info.Database, c.Database, info.Database, c.Database)
	}
	if info.RegistrationURL != c.RegistrationURL && !rr.force {
		return fmt.Errorf("%s is a dump of a cluster registered at %s; this manifest's is %s: its hosts would not find it (--force restores it anyway)", rr.dump, info.RegistrationURL, c.RegistrationURL)
	}
	if info.ServerImage != c.ServerImage {
		return fmt.Errorf("%s was taken from %s; the manifest says %s: set rancher.image to %s to restore it (the database's schema is that version's), then upgrade", rr.dump, info.ServerImage, c.ServerImage, info.ServerImage)
	}
	rr.info = info
	return nil
}

// restoreGraph keeps the manifest's graph for after the restore and plans
// the restore's own steps first.
func (rr *restoreRun) restoreGraph(r *run) error {
	rr.cluster = r.g
	g, err := engine.NewGraph(r.env.RestoreSteps(rr.dump, rr.info))
	if err != nil {
		return err
	}
	r.g = g
	return nil
}

// clusterGraph switches back to the manifest's graph: its plan starts the
// nodes again, together.
func (rr *restoreRun) clusterGraph(r *run) error {
	r.g = rr.cluster
	fmt.Fprintln(rr.human(r), "\nThe dump is loaded; every node is stopped. The plan that starts the cluster again (if it stops here, haplan apply starts it):")
	return nil
}
