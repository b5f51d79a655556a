package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/haplan/haplan/diag"
	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/health"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/preflight"
	"github.com/haplan/haplan/resources"
)

// realBackend wires the manifests and resources packages into the CLI.
func realBackend() backend {
	return backend{Load: loadManifest}
}

func loadManifest(path string, o loadOptions) (*loadedManifest, error) {
	l := manifests.Loader{SecretsOptional: o.Offline}
	var c *manifests.Cluster
	var ds diag.Diagnostics
	if path == "-" {
		// Standard input: YAML (or JSON), relative paths from here.
		l.Format = "yaml"
		c, ds = l.LoadReader("<stdin>", o.Stdin, ".")
	} else {
		c, ds = l.Load(path)
	}
	sources := c.Sources()
	switch {
	case o.JSON || (o.JSONErrors != nil && ds.HasErrors()):
		w := o.Diags
		if !o.JSON {
			w = o.JSONErrors
		}
		if err := diag.WriteJSON(w, ds, sources); err != nil {
			return nil, fmt.Errorf("write diagnostics: %w", err)
		}
	case len(ds) > 0:
		if err := diag.Render(o.Diags, ds, sources); err != nil {
			return nil, fmt.Errorf("write diagnostics: %w", err)
		}
	}
	if ds.HasErrors() {
		return nil, fmt.Errorf("%s: %w", path, errInvalidManifest)
	}
	if o.Offline {
		return &loadedManifest{Name: c.Name, Digest: c.Digest, Connect: func(context.Context, *slog.Logger) (clusterEnv, error) {
			return nil, errors.New("the manifest was loaded without its secrets")
		}}, nil
	}
	secrets, err := c.Secrets()
	if err != nil {
		return nil, fmt.Errorf("%s: resolve secrets: %w", path, err)
	}
	// A secret equal to a name the manifest shows anyway (validation warns
	// about it) is not masked: masking it would mask every database and
	// user name too, and tell the reader the password.
	public := map[string]bool{c.Database.User: true, c.Database.Name: true, c.Database.Admin.User: true, c.Name: true}
	vals := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if !public[strings.TrimSpace(s.Reveal())] {
			vals = append(vals, s.Reveal())
		}
	}
	return &loadedManifest{
		Name: c.Name, Digest: c.Digest, Secrets: vals,
		RegistrationURL: c.Rancher.HostRegistrationURL, ServerImage: c.Rancher.Image, Database: c.Database.Name,
		Connect: func(_ context.Context, logger *slog.Logger) (clusterEnv, error) {
			env, err := resources.NewEnv(c, resources.Options{Logger: logger})
			if err != nil {
				return nil, err
			}
			steps, err := resources.Compile(c, env)
			if err != nil {
				_ = env.Close()
				return nil, fmt.Errorf("compile the manifest: %w", err)
			}
			return &resourcesEnv{env: env, steps: steps}, nil
		},
	}, nil
}

// resourcesEnv adapts *resources.Env to the CLI's clusterEnv.
type resourcesEnv struct {
	env   *resources.Env
	steps []engine.Step
}

func (r *resourcesEnv) Steps() []engine.Step      { return r.steps }
func (r *resourcesEnv) LastBackup() string        { return r.env.LastBackup() }
func (r *resourcesEnv) Endpoints() []string       { return r.env.Endpoints() }
func (r *resourcesEnv) Close() error              { return r.env.Close() }
func (r *resourcesEnv) LockLost() <-chan struct{} { return r.env.LockLost() }

func (r *resourcesEnv) Status(ctx context.Context) *health.Report { return r.env.Status(ctx) }

func (r *resourcesEnv) BackupFile(ctx context.Context, path string) (*resources.BackupInfo, error) {
	return r.env.BackupFile(ctx, path)
}

func (r *resourcesEnv) DestroySteps(o resources.DestroyOptions) []engine.Step {
	return resources.CompileDestroy(r.env.Cluster(), r.env, o)
}

func (r *resourcesEnv) RestoreSteps(path string, info resources.BackupInfo) []engine.Step {
	return resources.CompileRestore(r.env.Cluster(), r.env, path, info)
}

func (r *resourcesEnv) Preflight(ctx context.Context) *preflight.Report {
	// A check connects first: its limit is the SSH timeout and then some
	// for the command (a slow site's rancher.timeouts.ssh holds for
	// preflight too).
	timeout := max(10*time.Second, r.env.Cluster().Rancher.Timeouts.SSH+5*time.Second)
	return preflight.Run(ctx, r.env, preflight.Options{Redact: r.env.Redactor().String, Timeout: timeout})
}

func (r *resourcesEnv) Lock(ctx context.Context, h resources.LockHolder, wait time.Duration) (func(context.Context) error, error) {
	unlock, err := r.env.Lock(ctx, h, wait)
	if err != nil {
		return nil, err
	}
	return unlock, nil
}

func (r *resourcesEnv) LockStatus(ctx context.Context) (*resources.LockHolder, error) {
	return r.env.LockStatus(ctx)
}

func (r *resourcesEnv) ForceUnlock(ctx context.Context, id int64) (*resources.LockHolder, error) {
	return r.env.ForceUnlock(ctx, id)
}
