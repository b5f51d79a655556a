package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/health"
	"github.com/haplan/haplan/preflight"
	"github.com/haplan/haplan/resources"
)

// errInvalidManifest is returned by backend.Load when the manifest has
// errors; the diagnostics have already been written. Never retried: the
// manifest must be fixed.
var errInvalidManifest = errors.New("the manifest has errors")

// backend is what the commands need from the manifest and resources
// packages. Run wires the real one (backend_real.go); tests inject fake
// steps through it, and run the real engine over them.
type backend struct {
	// Load reads and validates the manifest at path and writes its
	// diagnostics (errors and warnings, with source snippets) to
	// o.Diags. It returns errInvalidManifest, wrapped, when there are
	// errors.
	Load func(path string, o loadOptions) (*loadedManifest, error)
}

// loadOptions say how Load reads the manifest and reports on it.
type loadOptions struct {
	// Diags receives the diagnostics.
	Diags io.Writer
	// Stdin is read for the manifest "-".
	Stdin io.Reader
	// JSON writes them as one JSON document (diag.WriteJSON), valid or
	// not, instead of text.
	JSON bool
	// JSONErrors, when set, receives that document instead of Diags when
	// the manifest has errors (plan --json: the plan's JSON on stdout
	// when it is valid, the diagnostics' when it is not).
	JSONErrors io.Writer
	// Offline: secrets that are not there are warnings, and none is
	// resolved (validate in a CI job without production secrets); the
	// manifest cannot connect.
	Offline bool
}

// loadedManifest is a valid manifest, not yet connected to anything.
type loadedManifest struct {
	Name   string // the cluster's name
	Digest string // digest of the manifest, recorded in saved plans
	// RegistrationURL and ServerImage are rancher.hostRegistrationUrl and
	// rancher.image, which a restore checks a dump against.
	RegistrationURL, ServerImage string
	// Database is database.name, which a restore loads into.
	Database string
	// Secrets are the resolved secret values, used only to build the
	// redactor every output passes through.
	Secrets []string
	// Connect prepares the connections of a run (lazily dialled) and
	// compiles the steps. logger receives the run's debug log.
	Connect func(ctx context.Context, logger *slog.Logger) (clusterEnv, error)
}

// clusterEnv is the live side of one run.
type clusterEnv interface {
	// Steps are the compiled steps of the manifest.
	Steps() []engine.Step
	// Lock takes the cluster's apply lock; *resources.LockHeldError when
	// another haplan holds it. The returned function releases it.
	// It waits up to wait for a lock another run holds.
	Lock(ctx context.Context, holder resources.LockHolder, wait time.Duration) (func(context.Context) error, error)
	// LockLost is closed when the held lock is lost (its database
	// connection dropped); nil before Lock.
	LockLost() <-chan struct{}
	// LockStatus is who holds the cluster's lock; nil when it is free.
	LockStatus(ctx context.Context) (*resources.LockHolder, error)
	// ForceUnlock ends lock ID id, left behind by a run that cannot
	// release it, and says who holds the lock then (nil: nobody);
	// *resources.LockMovedError when id no longer holds it.
	ForceUnlock(ctx context.Context, id int64) (*resources.LockHolder, error)
	// Endpoints are where the cluster answers, printed after an apply.
	Endpoints() []string
	// LastBackup is the dump this run took before stopping the nodes
	// (db.backup); "" when it took none.
	LastBackup() string
	// Preflight checks the cluster's prerequisites without changing
	// anything: SSH, docker, ports, MySQL credentials and capacity, memory,
	// clocks, the load balancer.
	Preflight(ctx context.Context) *preflight.Report
	// Status reads the cluster's health, read-only (not yet judged).
	Status(ctx context.Context) *health.Report
	// BackupFile writes a dump of the Rancher database to path and its
	// record next to it.
	BackupFile(ctx context.Context, path string) (*resources.BackupInfo, error)
	// RestoreSteps are the steps that stop the cluster and load the dump
	// at path.
	RestoreSteps(path string, info resources.BackupInfo) []engine.Step
	// DestroySteps are the steps that remove what haplan made.
	DestroySteps(o resources.DestroyOptions) []engine.Step
	Close() error
}
