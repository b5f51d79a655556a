package standin

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

// BootstrapOptions configures the bootstrap server (no arguments).
type BootstrapOptions struct {
	DB DBConfig
	// InitDelay stands in for the schema creation the real server does
	// before it listens (CATTLE_STANDIN_INIT_DELAY, default 25s).
	InitDelay time.Duration
	// Addr is the listen address, ":8080".
	Addr string
	// Owner names this server in the changelog lock (the hostname).
	Owner string
	// Poll is how often ha.enabled is watched (5s).
	Poll time.Duration
	// LockWait is how long to wait for a held changelog lock (5m).
	LockWait time.Duration
	Log      *log.Logger
}

// RunBootstrap runs the bootstrap server until ctx ends or it fails.
func RunBootstrap(ctx context.Context, o BootstrapOptions) error {
	o.Log.Printf("Starting Rancher Server (stand-in for rancher/server:v1.0.1), database %s", o.DB)
	store, err := connectWithRetry(ctx, o.DB, o.Log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("liquibase update failed: %w", err)
	}
	if err := acquireLock(ctx, store, o); err != nil {
		return err
	}
	o.Log.Printf("Successfully acquired change log lock")
	o.Log.Printf("Initialising the cattle schema, this may take a while")
	select {
	case <-ctx.Done():
		_ = store.ReleaseLock(context.WithoutCancel(ctx))
		return ctx.Err()
	case <-time.After(o.InitDelay):
	}
	if err := store.ReleaseLock(ctx); err != nil {
		return err
	}
	o.Log.Printf("Successfully released change log lock")

	api := &API{Store: store, DB: o.DB, Log: o.Log, Registry: store}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	o.Log.Printf("Startup Succeeded, Listening on port %d", ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go watchEnabled(ctx, store, o.Poll, o.Log)
	return serveUntilDone(ctx, srv, ln)
}

// acquireLock takes the changelog lock like liquibase: a held lock is
// waited for, then startup fails with "Could not acquire change log lock".
func acquireLock(ctx context.Context, store *Store, o BootstrapOptions) error {
	deadline := time.Now().Add(o.LockWait)
	for {
		err := store.AcquireLock(ctx, o.Owner)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return err
		}
		o.Log.Printf("Waiting for changelog lock.... (%v)", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}

// watchEnabled logs when HA is enabled: from then on cattle's process
// engine runs only in HA containers, so this server stops processing.
func watchEnabled(ctx context.Context, store *Store, every time.Duration, lg *log.Logger) {
	was := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v, _, err := store.Setting(ctx, SettingHAEnabled)
		if err == nil {
			now := v == "true"
			if now && !was {
				lg.Printf("HA is enabled (ha.enabled=true): this non-HA server stops processing; stop and remove it before running rancher-ha.sh")
			} else if !now && was {
				lg.Printf("HA is disabled (ha.enabled=%s): processing resumes", v)
			}
			was = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// connectWithRetry waits for the database like the real server does,
// logging every failure. Access errors are fatal: retrying cannot fix them.
func connectWithRetry(ctx context.Context, c DBConfig, lg *log.Logger) (*Store, error) {
	wait := time.Second
	for {
		s, err := OpenStore(ctx, c)
		if err == nil {
			lg.Printf("Connected to database %s", c)
			return s, nil
		}
		if isAccessDenied(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lg.Printf("Waiting for database %s: %v (retrying in %s)", c, err, wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// serveUntilDone serves on ln until ctx ends, then shuts down.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return ctx.Err()
	}
}
