package standin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// HAOptions configures the "ha" entrypoint (cluster-manager).
type HAOptions struct {
	// EtcDir is /var/lib/rancher/etc (bind-mounted from the node).
	EtcDir string
	// Getenv is the process environment; agent.conf and server.conf override it.
	Getenv func(string) string
	// RouteFile is /proc/net/route, used to find the default route's source IP.
	RouteFile string
	// APIAddr is the node API address, ":18080".
	APIAddr string
	// Hostname is the member name (the docker host's name under --net host).
	Hostname string
	// Heartbeat is the membership loop period (5s).
	Heartbeat time.Duration
	// HostPoll and HostPolls: the master waits HostPolls x HostPoll for
	// clusterSize active hosts (31 x 2s).
	HostPoll  time.Duration
	HostPolls int
	// Agent runs the node's agent container; a node's host is active in
	// System HA only while it runs.
	Agent AgentLauncher
	Log   *log.Logger
}

// ErrHANotEnabled: setting ha.enabled is not true. The container exits and
// its restart policy tries again.
var ErrHANotEnabled = errors.New("HA is not enabled")

// ErrNoClusterIP: no cluster IP could be found for a cluster larger than 1.
var ErrNoClusterIP = errors.New("CATTLE_HA_CLUSTER_IP must be set")

// haConfig is what server.conf and agent.conf say.
type nodeConfig struct {
	size      int
	url       string
	clusterIP string
	db        DBConfig
	httpPort  int
	httpsPort int
	ports     map[string]int
	forceHA   bool
}

func loadNodeConfig(o HAOptions) (nodeConfig, error) {
	conf := map[string]string{}
	for _, name := range []string{"agent.conf", "server.conf"} {
		f, err := os.Open(filepath.Join(o.EtcDir, name))
		if errors.Is(err, os.ErrNotExist) && name == "agent.conf" {
			continue
		}
		if err != nil {
			return nodeConfig{}, fmt.Errorf("read %s: %w", name, err)
		}
		err = ParseExports(f, conf)
		f.Close()
		if err != nil {
			return nodeConfig{}, fmt.Errorf("parse %s: %w", name, err)
		}
	}
	get := func(k string) string {
		if v, ok := conf[k]; ok {
			return v
		}
		return o.Getenv(k)
	}
	var c nodeConfig
	var err error
	if c.size, err = strconv.Atoi(get("CATTLE_HA_CLUSTER_SIZE")); err != nil || c.size < 1 {
		return nodeConfig{}, fmt.Errorf("CATTLE_HA_CLUSTER_SIZE=%q: not a cluster size", get("CATTLE_HA_CLUSTER_SIZE"))
	}
	c.url = get("CATTLE_HA_HOST_REGISTRATION_URL")
	c.forceHA = get("CATTLE_HA_ENABLED") == "true"
	c.ports = map[string]int{}
	for _, p := range []struct {
		env, name string
		def       int
	}{
		{"CATTLE_HA_PORT_REDIS", "redis", 6379}, {"CATTLE_HA_PORT_SWARM", "swarm", 2376},
		{"CATTLE_HA_PORT_HTTP", "http", 80}, {"CATTLE_HA_PORT_HTTPS", "https", 443},
		{"CATTLE_HA_PORT_PP_HTTP", "pp_http", 81}, {"CATTLE_HA_PORT_PP_HTTPS", "pp_https", 444},
		{"CATTLE_HA_PORT_ZK_CLIENT", "zk_client", 2181}, {"CATTLE_HA_PORT_ZK_QUORUM", "zk_quorum", 2888},
		{"CATTLE_HA_PORT_ZK_LEADER", "zk_leader", 3888},
	} {
		c.ports[p.name] = p.def
		if v := get(p.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return nodeConfig{}, fmt.Errorf("%s=%q: not a port", p.env, v)
			}
			c.ports[p.name] = n
		}
	}
	c.httpPort, c.httpsPort = c.ports["http"], c.ports["https"]

	c.db, err = DBConfigFromEnv(get)
	if err != nil {
		return nodeConfig{}, err
	}
	keyText, err := os.ReadFile(filepath.Join(o.EtcDir, "server", "encryption.key"))
	if err != nil {
		return nodeConfig{}, fmt.Errorf("read encryption key: %w", err)
	}
	key, err := DecodeKey(string(keyText))
	if err != nil {
		return nodeConfig{}, err
	}
	if c.db.Password, err = Decrypt(key, get("CATTLE_DB_CATTLE_PASSWORD")); err != nil {
		return nodeConfig{}, fmt.Errorf("CATTLE_DB_CATTLE_PASSWORD does not decrypt with server/encryption.key (every node must run the same rancher-ha.sh): %w", err)
	}

	c.clusterIP = get("CATTLE_HA_CLUSTER_IP")
	if c.clusterIP == "" {
		c.clusterIP = get("CATTLE_AGENT_IP")
	}
	if c.clusterIP == "" {
		if b, err := os.ReadFile(o.RouteFile); err == nil {
			c.clusterIP = defaultRouteIP(string(b), interfaceIPv4)
		}
	}
	if c.clusterIP == "" {
		if c.size != 1 {
			return nodeConfig{}, ErrNoClusterIP
		}
		c.clusterIP = "127.0.0.1"
	}
	return c, nil
}

// node is one running cluster-manager.
type node struct {
	o     HAOptions
	c     nodeConfig
	store *Store
	self  Member

	api *API

	becameMaster chan struct{}
	mu           sync.Mutex
	live         []Member
}

// RunHA runs the "ha" entrypoint until ctx ends or something is fatal.
func RunHA(ctx context.Context, o HAOptions) error {
	c, err := loadNodeConfig(o)
	if err != nil {
		return err
	}
	o.Log.Printf("Cluster IP %s, cluster size %d, database %s", c.clusterIP, c.size, c.db)
	store, err := connectWithRetry(ctx, c.db, o.Log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	enabled, _, err := store.Setting(ctx, SettingHAEnabled)
	if err != nil {
		return err
	}
	if enabled != "true" && !c.forceHA {
		return fmt.Errorf("%w, ha.enabled=%s", ErrHANotEnabled, enabled)
	}
	if _, err := store.EnsureSetting(ctx, settingProjectUUID, "system-ha-"+randHex(4)); err != nil {
		return err
	}
	ports, _ := json.Marshal(c.ports)
	n := &node{o: o, c: c, store: store, becameMaster: make(chan struct{}, 1),
		self: Member{Name: o.Hostname, UUID: newUUID(), IP: c.clusterIP, Ports: string(ports)}}
	if n.self.ID, err = store.Register(ctx, n.self); err != nil {
		return err
	}
	n.live = []Member{n.self}

	// cluster-manager starts cattle with DEFAULT_CATTLE_API_HOST set to the
	// Host Registration URL (service/cluster_service.go line 200).
	api := &API{Store: store, DB: c.db, Log: o.Log, Registry: store, APIHost: c.url}
	n.api = api
	ln, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.APIAddr, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveUntilDone(gctx, &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 30 * time.Second}, ln)
	})
	g.Go(func() error { return n.membershipLoop(gctx) })
	g.Go(func() error { return n.agentLoop(gctx) })
	g.Go(func() error { return n.formCluster(gctx) })
	g.Go(func() error { return n.serveManagement(gctx, api) })
	return g.Wait()
}

// member is this node's own cluster row.
func (n *node) member() Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.self
}

// membershipLoop bumps the heartbeat and follows the cluster table.
func (n *node) membershipLoop(ctx context.Context) error {
	tr := NewTracker(n.self.ID)
	lastDesc, lastMaster, first := "", false, true
	t := time.NewTicker(n.o.Heartbeat)
	defer t.Stop()
	for {
		ok, err := n.store.Heartbeat(ctx, n.self.ID)
		if err != nil {
			n.o.Log.Printf("Failed to update heartbeat: %v", err)
		} else if !ok {
			self := n.member()
			self.UUID = newUUID()
			if self.ID, err = n.store.Register(ctx, self); err != nil {
				return err
			}
			n.mu.Lock()
			n.self = self
			n.mu.Unlock()
			tr.SetSelf(n.self.ID)
			n.o.Log.Printf("Registered again in the cluster as member %d", n.self.ID)
		}
		if err == nil {
			if rows, err := n.store.Members(ctx); err != nil {
				n.o.Log.Printf("Failed to read cluster members: %v", err)
			} else {
				desc, master := n.observe(ctx, tr, rows)
				if desc != lastDesc {
					n.o.Log.Printf("Cluster changed, %s", desc)
					lastDesc = desc
				}
				if master != lastMaster || first {
					n.o.Log.Printf("Currently Master: %t", master)
					lastMaster, first = master, false
				}
				if master {
					select {
					case n.becameMaster <- struct{}{}:
					default:
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// observe applies one snapshot: the master forgets dead members and assigns
// indexes. It returns the log description and whether this node is master.
func (n *node) observe(ctx context.Context, tr *Tracker, rows []Member) (string, bool) {
	v := tr.Observe(rows)
	master := v.Master() == n.self.ID
	idx := map[int64]int{}
	for _, m := range v.Live {
		idx[m.ID] = m.AssignedIndex
	}
	if master {
		for _, m := range v.Dead {
			if err := n.store.DeleteMember(ctx, m.ID); err != nil {
				n.o.Log.Printf("Failed to forget member %s (%s): %v", m.Name, m.IP, err)
			}
		}
		idx = AssignIndexes(v.Live, n.c.size)
		for i, m := range v.Live {
			if idx[m.ID] != m.AssignedIndex {
				if err := n.store.AssignIndex(ctx, m.ID, idx[m.ID]); err != nil {
					n.o.Log.Printf("Failed to assign index: %v", err)
				}
				v.Live[i].AssignedIndex = idx[m.ID]
			}
		}
	}
	n.mu.Lock()
	n.live = v.Live
	n.mu.Unlock()
	return fmt.Sprintf("index=%d, members=%s", idx[n.self.ID], describeMembers(v.Live, idx)), master
}

// formCluster is the master's startup: wait for clusterSize active hosts
// (fatal on timeout, unless the stack was already launched), then make sure
// the system-ssl certificate exists and mark the stack launched.
func (n *node) formCluster(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-n.becameMaster:
	}
	launched, _, err := n.store.Setting(ctx, settingStackLaunched)
	if err != nil {
		return err
	}
	if launched != "true" {
		if err := n.waitForHosts(ctx); err != nil {
			return err
		}
	}
	if err := n.ensureCertificate(ctx); err != nil {
		return err
	}
	if launched != "true" {
		n.o.Log.Printf("Launching management stack")
	}
	return n.store.SetSetting(ctx, settingStackLaunched, "true")
}

func (n *node) waitForHosts(ctx context.Context) error {
	for i := 0; i < n.o.HostPolls; i++ {
		active, _ := n.api.activeHAHosts(ctx)
		if active >= n.c.size {
			return nil
		}
		// cluster-manager v0.1.4 rancher/rancher.go WaitForHosts logs the
		// count it waits for, the cluster size, not how many are missing.
		n.o.Log.Printf("Waiting for %d host(s) to be active", n.c.size)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(n.o.HostPoll):
		}
	}
	// cluster_service.go: log.Fatalf("Failed while waiting for %d host(s) to be active: %v", ...).
	//lint:ignore ST1005 the real log line, capitalised
	return fmt.Errorf("Failed while waiting for %d host(s) to be active: Timeout waiting for hosts to be active", n.c.size)
}

func (n *node) ensureCertificate(ctx context.Context) error {
	for {
		if _, ok, err := n.store.Certificate(ctx, certSystemSSL); err != nil {
			return err
		} else if ok {
			return nil
		}
		b, ok, err := LoadProvidedCerts(filepath.Join(n.o.EtcDir, "ssl"))
		if err == nil && !ok {
			b, err = GenerateSelfSigned(n.c.url, time.Now())
		}
		if err == nil {
			return n.store.PutCertificate(ctx, certSystemSSL, b)
		}
		n.o.Log.Printf("Can not launch agent right now: %v", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(n.o.HostPoll):
		}
	}
}

// serveManagement waits for the launched stack and its certificate, writes
// ca.crt and serves the HTTP and HTTPS ports, as the management stack's
// load balancer does on every node.
func (n *node) serveManagement(ctx context.Context, api *API) error {
	var b CertBundle
	for {
		launched, _, err := n.store.Setting(ctx, settingStackLaunched)
		if err == nil && launched == "true" {
			var ok bool
			if b, ok, err = n.store.Certificate(ctx, certSystemSSL); err == nil && ok {
				break
			}
		}
		if err != nil && ctx.Err() == nil {
			n.o.Log.Printf("Waiting for management stack: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(n.o.HostPoll):
		}
	}
	if err := WriteCAFile(filepath.Join(n.o.EtcDir, "ssl", "ca.crt"), b.Chain); err != nil {
		return err
	}
	pair, err := b.TLS()
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", ":"+strconv.Itoa(n.c.httpPort))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", n.c.httpPort, err)
	}
	httpsLn, err := net.Listen("tcp", ":"+strconv.Itoa(n.c.httpsPort))
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("listen on port %d: %w", n.c.httpsPort, err)
	}
	tlsLn := tls.NewListener(httpsLn, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	n.o.Log.Printf("Done launching management stack")
	n.o.Log.Printf("You can access the site at %s", n.c.url)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveUntilDone(gctx, &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 30 * time.Second}, httpLn)
	})
	g.Go(func() error {
		return serveUntilDone(gctx, &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 30 * time.Second}, tlsLn)
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
