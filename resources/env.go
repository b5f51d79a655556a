package resources

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haplan/haplan/layout"
	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/redact"
	"github.com/haplan/haplan/transport"
)

// Env is one haplan run's view of the cluster, split by job:
//
//   - secrets: the manifest's secret values, resolved once, and the
//     redactor every output passes through (this file);
//   - conns: the SSH pool and what rides on it (ssh.go: how a machine is
//     reached and the runner a step gets; tunnel.go: the HTTP clients and
//     TCP dials through SSH; dbconn.go: the admin database);
//   - facts: the reads steps share, each with its freshness (reads.go);
//   - the cluster's apply lock (lock.go).
//
// Steps hold the Env; nothing outside this package sees its parts.
type Env struct {
	c    *manifests.Cluster
	opts Options
	log  *slog.Logger
	secrets
	conns
	facts runFacts

	mu       sync.Mutex // guards lockLost and extraDBs
	lockLost chan struct{}
}

// secrets are the manifest's secret values, resolved when the Env is made.
type secrets struct {
	red   *redact.Redactor
	dbPW  manifests.Sensitive
	admPW manifests.Sensitive
	cert  *certMaterial
	// apiAccess and apiSecret are rancher.apiKey, empty without one.
	apiAccess, apiSecret manifests.Sensitive
}

// conns are the run's connections, all opened lazily.
type conns struct {
	pool *transport.Pool
	// connect, when set (unit tests), replaces the pool: the runner for a
	// machine's SSH settings.
	connect func(context.Context, transport.Config) (transport.Runner, error)
	// sshcfg is the operator's ssh_config; nil when there is none.
	sshcfg *transport.SSHConfig

	cmu sync.Mutex // guards tunnels, lastDial and lastBackup
	// tunnels are the HTTP clients that reach a machine's port through its
	// SSH connection (tunnel.go), by "machine:port".
	tunnels map[string]*http.Client
	// lastDial is the node dialFromNodes went through last.
	lastDial int
	// lastBackup is the dump db.backup wrote in this run ("" before).
	lastBackup string

	dbOnce   sync.Once
	db       *sql.DB
	dbErr    error
	extraDBs []*sql.DB // guarded by Env.mu
}

type certMaterial struct {
	cert, chain string
	key         manifests.Sensitive
}

// NewEnv resolves the manifest's secrets and prepares connections (lazily
// dialled). Close releases them.
func NewEnv(c *manifests.Cluster, opts Options) (*Env, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPTimeout == 0 {
		opts.HTTPTimeout = 10 * time.Second
	}
	e := &Env{c: c, opts: opts, log: opts.Logger}
	e.connect = opts.Connect
	var err error
	if e.dbPW, err = c.Database.Password.Resolve(); err != nil {
		return nil, fmt.Errorf("database.password: %w", err)
	}
	if e.admPW, err = c.Database.Admin.Password.Resolve(); err != nil {
		return nil, fmt.Errorf("database.admin.password: %w", err)
	}
	if ct := c.Rancher.Certificate; ct != nil {
		cm := &certMaterial{}
		var v manifests.Sensitive
		if v, err = ct.Cert.Resolve(); err != nil {
			return nil, fmt.Errorf("rancher.certificate.cert: %w", err)
		}
		cm.cert = v.Reveal()
		if v, err = ct.Chain.Resolve(); err != nil {
			return nil, fmt.Errorf("rancher.certificate.chain: %w", err)
		}
		cm.chain = v.Reveal()
		if cm.key, err = ct.Key.Resolve(); err != nil {
			return nil, fmt.Errorf("rancher.certificate.key: %w", err)
		}
		e.cert = cm
	}
	if k := c.Rancher.APIKey; k != nil {
		if e.apiAccess, err = k.AccessKey.Resolve(); err != nil {
			return nil, fmt.Errorf("rancher.apiKey.accessKey: %w", err)
		}
		if e.apiSecret, err = k.SecretKey.Resolve(); err != nil {
			return nil, fmt.Errorf("rancher.apiKey.secretKey: %w", err)
		}
	}
	secrets, err := c.Secrets()
	if err != nil {
		return nil, err
	}
	vals := make([]string, 0, len(secrets))
	for _, s := range secrets {
		vals = append(vals, s.Reveal())
	}
	e.red = redact.New(vals...)
	if e.sshcfg, err = readSSHConfig(opts.SSHConfigFiles); err != nil {
		return nil, err
	}
	e.pool = transport.NewPool(transport.PoolOptions{
		Logger:         e.log,
		Redact:         e.red.String,
		Retries:        opts.SSHRetries,
		CommandTimeout: c.Rancher.Timeouts.Command,
	})
	return e, nil
}

// Redactor masks this cluster's secrets.
func (e *Env) Redactor() *redact.Redactor { return e.red }

// Close closes every connection the run opened.
func (e *Env) Close() error {
	var errs []error
	e.closeTunnels()
	if e.pool != nil {
		errs = append(errs, e.pool.Close())
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
	}
	e.mu.Lock()
	for _, db := range e.extraDBs {
		errs = append(errs, db.Close())
	}
	e.extraDBs = nil
	e.mu.Unlock()
	return errors.Join(errs...)
}

// Endpoints lists where the cluster answers, for people.
func (e *Env) Endpoints() []string {
	out := []string{e.c.Rancher.HostRegistrationURL + "  (the cluster, through the load balancer)"}
	for _, n := range e.c.Nodes {
		out = append(out, fmt.Sprintf("http://%s  (%s's own API and UI)", net.JoinHostPort(n.Address, strconv.Itoa(layout.HAAPIPort)), n.Name))
	}
	return out
}

// digest is the hex SHA-256 of b, prefixed so it is recognisable in plans.
func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// short abbreviates a digest for prose.
func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "none"
	}
	return d
}
