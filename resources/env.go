package resources

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/manifests"
	"github.com/haplan/haplan/redact"
	"github.com/haplan/haplan/transport"
)

// Paths haplan keeps on the nodes and hosts.
const (
	haplanDir      = "/var/lib/rancher/etc/haplan"
	scriptPath     = haplanDir + "/rancher-ha.sh"
	scriptMetaPath = haplanDir + "/script.json"
	startedPath    = haplanDir + "/started.json"
	bootstrapEnv   = haplanDir + "/bootstrap.env"
	agentConfPath  = "/var/lib/rancher/etc/agent.conf"
	caPath         = "/var/lib/rancher/etc/ssl/ca.crt"
	bootstrapName  = "haplan-bootstrap"
	haContainer    = "rancher-ha"
	bootstrapPort  = 8080
	haAPIPort      = 18080
	lbHostName     = "lb"
)

// Env is the connections and shared facts of one haplan run.
type Env struct {
	c    *manifests.Cluster
	opts Options
	log  *slog.Logger
	red  *redact.Redactor
	pool *transport.Pool
	// sshcfg is the operator's ssh_config; nil when there is none.
	sshcfg *transport.SSHConfig
	dbPW   manifests.Sensitive
	admPW  manifests.Sensitive
	cert   *certMaterial
	// apiAccess and apiSecret are rancher.apiKey, empty without one.
	apiAccess, apiSecret manifests.Sensitive
	// tunnels are the HTTP clients that reach a machine's port through its
	// SSH connection (tunnel.go), by "machine:port".
	tunnels map[string]*http.Client
	// lastDial is the node dialFromNodes went through last.
	lastDial int

	dbOnce sync.Once
	db     *sql.DB
	dbErr  error

	mu       sync.Mutex
	ca       []byte // cluster CA once seen; only successes are cached
	extraDBs []*sql.DB
	lockLost chan struct{}
	script   *scriptFacts
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
		out = append(out, fmt.Sprintf("http://%s  (%s's own API and UI)", net.JoinHostPort(n.Address, strconv.Itoa(haAPIPort)), n.Name))
	}
	return out
}

// target is a machine haplan reaches over SSH.
type target struct {
	name, address string
	ssh           manifests.SSH
}

func nodeTarget(n manifests.Node) target { return target{n.Name, n.Address, n.SSH} }
func hostTarget(h manifests.Host) target { return target{h.Name, h.Address, h.SSH} }

func (e *Env) lbTarget() target {
	return target{lbHostName, e.c.LoadBalancer.Address, e.c.LoadBalancer.HAProxy.SSH}
}

// readSSHConfig reads the operator's OpenSSH client configuration; files
// nil means the ones ssh itself reads.
func readSSHConfig(files []string) (*transport.SSHConfig, error) {
	home, _ := os.UserHomeDir() // without a home there is no ~/.ssh/config to read
	if files == nil {
		files = transport.DefaultSSHConfigFiles(home)
	}
	return transport.ReadSSHConfig(home, files...)
}

// sshConfig is how haplan reaches t. The precedence, from strongest:
//
//  1. what the manifest writes (the machine's ssh block, then the
//     manifest's ssh defaults): user, port, identityFile, bastion;
//  2. the operator's ssh_config for the machine's address (Host patterns
//     are matched against it): User, Port, IdentityFile, ProxyJump;
//  3. the built-in defaults: root, port 22, and without any identity file
//     the ssh-agent's keys, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
//
// HostName from ssh_config always applies: the manifest's address is then
// an alias and haplan dials (and checks known_hosts for) the HostName, as
// ssh does. Known hosts, host-key policy and pinned keys come only from the
// manifest.
func (e *Env) sshConfig(t target) (transport.Config, error) {
	hs, err := e.sshcfg.Lookup(t.address)
	if err != nil {
		return transport.Config{}, fmt.Errorf("%s: %w", t.name, err)
	}
	user, identity, err := sshIdentity(t.ssh, hs, 0)
	if err != nil {
		return transport.Config{}, fmt.Errorf("%s: %w", t.name, err)
	}
	cfg := transport.Config{
		Host:           t.name,
		Address:        cmp.Or(hs.HostName, t.address),
		Port:           t.ssh.Port,
		User:           user,
		IdentityFile:   identity,
		KnownHostsFile: t.ssh.KnownHostsFile,
		HostKeyPolicy:  t.ssh.HostKeyPolicy,
		HostKey:        t.ssh.HostKey,
		ConnectTimeout: e.c.Rancher.Timeouts.SSH,
		Sudo:           user != "root",
		KexAlgorithms:  hs.KexAlgorithms,
	}
	if !t.ssh.Explicit.Has(manifests.SSHPort) && hs.Port != 0 {
		cfg.Port = hs.Port
	}
	jump, from := t.ssh.Bastion, "ssh.bastion"
	if jump == "" {
		jump, from = hs.ProxyJump, "ProxyJump in ssh config"
	}
	if jump != "" {
		b, err := e.jumpChain(jump, t.ssh, cfg.ConnectTimeout)
		if err != nil {
			return cfg, fmt.Errorf("%s: %s: %w", t.name, from, err)
		}
		cfg.Bastion = b
	}
	return cfg, nil
}

// sshIdentity picks the login user and identity file: the manifest's when it
// wrote them, else ssh_config's, else root and no file (the agent and the
// default keys). port is the one the connection will use, for %p; 0 means
// the manifest's.
func sshIdentity(s manifests.SSH, hs transport.HostSettings, port int) (user, identity string, err error) {
	user = s.User
	if !s.Explicit.Has(manifests.SSHUser) {
		user = cmp.Or(hs.User, manifests.DefaultSSHUser)
	}
	if s.Explicit.Has(manifests.SSHIdentityFile) {
		return user, s.IdentityFile, nil
	}
	if port == 0 {
		port = s.Port
		if !s.Explicit.Has(manifests.SSHPort) && hs.Port != 0 {
			port = hs.Port
		}
	}
	identity, err = hs.IdentityFile(user, port)
	return user, identity, err
}

// jumpChain turns "[user@]host[:port]" hops, separated by commas and
// connected to in order, into nested Configs: the last hop is the target's
// Bastion, its Bastion the hop before. Each hop is looked up in ssh_config
// like a machine; a user or port written in the hop wins, and the
// machine's manifest settings stand in for the rest.
func (e *Env) jumpChain(spec string, s manifests.SSH, timeout time.Duration) (*transport.Config, error) {
	var prev *transport.Config
	for _, hop := range strings.Split(spec, ",") {
		user, host, port, err := parseBastion(strings.TrimSpace(hop))
		if err != nil {
			return nil, err
		}
		hs, err := e.sshcfg.Lookup(host)
		if err != nil {
			return nil, err
		}
		port = cmp.Or(port, hs.Port, manifests.DefaultSSHPort)
		defUser, identity, err := sshIdentity(s, hs, port)
		if err != nil {
			return nil, err
		}
		b := &transport.Config{
			Host:           "bastion " + host,
			Address:        cmp.Or(hs.HostName, host),
			Port:           port,
			User:           cmp.Or(user, defUser),
			IdentityFile:   identity,
			KnownHostsFile: s.KnownHostsFile,
			HostKeyPolicy:  s.HostKeyPolicy,
			ConnectTimeout: timeout,
			Bastion:        prev,
			KexAlgorithms:  hs.KexAlgorithms,
		}
		prev = b
	}
	return prev, nil
}

// parseBastion reads "user@host:port" (user and port optional; 0 when
// absent).
func parseBastion(s string) (user, host string, port int, err error) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	h, p, serr := net.SplitHostPort(s)
	if serr != nil {
		h = s
	} else if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return "", "", 0, fmt.Errorf("bad port in %q", s)
	}
	if h == "" {
		return "", "", 0, errors.New("no host")
	}
	return user, h, port, nil
}

// runner returns a connected runner for t; read-only unless mutate is set.
func (e *Env) runner(ctx context.Context, t target, mutate bool) (transport.Runner, error) {
	cfg, err := e.sshConfig(t)
	if err != nil {
		return nil, err
	}
	c, err := e.pool.Client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if mutate {
		return c, nil
	}
	return transport.ReadOnly(c), nil
}

// Waits on the critical path (bootstrap readiness, cluster formation) look
// again every pollEvery: every poll that comes late is time the whole apply
// waits for nothing, and a poll is one small HTTP request. They tell the
// operator where they are every reportEvery, and a wait for a container
// checks that it is still alive every containerCheckEvery.
const (
	pollEvery           = 250 * time.Millisecond
	reportEvery         = 5 * time.Second
	containerCheckEvery = 10 * time.Second
)

// run executes a command and returns trimmed stdout.
func run(ctx context.Context, r transport.Runner, line string, mutates bool) (string, error) {
	return runWithin(ctx, r, line, mutates, 0)
}

// runWithin is run with a timeout of its own (0: the pool's default).
func runWithin(ctx context.Context, r transport.Runner, line string, mutates bool, limit time.Duration) (string, error) {
	res, err := r.Run(ctx, transport.Cmd{Line: line, Mutates: mutates, Timeout: limit})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// adminConfig is the driver configuration of the admin account. Statements
// are interpolated client-side (InterpolateParams) so passwords travel as
// bound values and never show up in a server-side error.
func (e *Env) adminConfig() *mysql.Config {
	d := e.c.Database
	cfg := mysql.NewConfig()
	cfg.User = d.Admin.User
	cfg.Passwd = e.admPW.Reveal()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.InterpolateParams = true
	cfg.Logger = driverLogger{e.log}
	if e.adminViaSSH() {
		// An SSH channel has no deadlines, and the driver would fail every
		// read that set one: the callers' contexts bound the time instead.
		cfg.ReadTimeout, cfg.WriteTimeout = 0, 0
		// The dial may try more than one node, each with its own SSH
		// connect timeout and retries.
		cfg.Timeout = max(cfg.Timeout, 2*e.c.Rancher.Timeouts.SSH)
		cfg.DialFunc = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return e.dialFromNodes(ctx, addr)
		}
	}
	return cfg
}

// adminViaSSH reports whether the admin connection goes through a node's
// SSH connection: database.admin.via, or by default when the first node is
// reached through a bastion (the manifest's or ssh_config's ProxyJump).
func (e *Env) adminViaSSH() bool {
	switch e.c.Database.Admin.Via {
	case manifests.AdminViaSSH:
		return true
	case manifests.AdminDirect:
		return false
	}
	if len(e.c.Nodes) == 0 {
		return false
	}
	cfg, err := e.sshConfig(nodeTarget(e.c.Nodes[0]))
	return err == nil && cfg.Bastion != nil
}

// driverLogger sends the MySQL driver's own messages to the debug log
// instead of stderr.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Debug("mysql driver", "msg", fmt.Sprint(v...)) }

// adminDB is the admin connection, opened on first use.
func (e *Env) adminDB(ctx context.Context) (*sql.DB, error) {
	e.dbOnce.Do(func() {
		conn, err := mysql.NewConnector(e.adminConfig())
		if err != nil {
			e.dbErr = fmt.Errorf("database %s: %w", e.dbAddr(), err)
			return
		}
		e.db = sql.OpenDB(conn)
		e.db.SetMaxOpenConns(8)
	})
	if e.dbErr != nil {
		return nil, e.dbErr
	}
	// Through SSH the dial may pass over a node that does not answer.
	pctx, cancel := context.WithTimeout(ctx, max(10*time.Second, e.adminConfig().Timeout))
	defer cancel()
	if err := e.db.PingContext(pctx); err != nil {
		// The driver's errors name users and addresses, never passwords;
		// every output is redacted on top. Keep the type for errors.As.
		return nil, &DBError{Addr: e.dbAddr(), User: e.c.Database.Admin.User, Err: err, red: e.red}
	}
	return e.db, nil
}

// dbError reports a statement of the admin connection that failed.
func (e *Env) dbError(op string, err error) error {
	return &DBError{Addr: e.dbAddr(), User: e.c.Database.Admin.User, Op: op, Err: err, red: e.red}
}

func (e *Env) dbAddr() string {
	return net.JoinHostPort(e.c.Database.Host, strconv.Itoa(e.c.Database.Port))
}

// DBError is a failure of the admin account on the database server: to
// reach it, or (Op set) of a statement. The driver's own messages name
// neither the server nor, for a connection the server dropped, what
// happened; they are redacted, as statements are interpolated client-side.
type DBError struct {
	Addr, User string
	Op         string // e.g. "CREATE USER for 'cattle'@'10.0.0.11'"; empty when connecting failed
	Err        error
	red        *redact.Redactor
}

func (e *DBError) Error() string {
	msg := e.red.String(e.Err.Error())
	if errors.Is(e.Err, mysql.ErrInvalidConn) || errors.Is(e.Err, driver.ErrBadConn) {
		msg += " (the connection to the database server was lost)"
	}
	if e.Op == "" {
		return fmt.Sprintf("database %s as %q (database.admin): %s", e.Addr, e.User, msg)
	}
	return fmt.Sprintf("database %s: %s: %s", e.Addr, e.Op, msg)
}
func (e *DBError) Unwrap() error { return e.Err }

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
