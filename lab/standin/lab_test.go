//go:build lab

package standin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haplan/haplan/internal/syncbuf"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/lab"
)

// testDB creates a throwaway database on the server named by
// STANDIN_TEST_MYSQL_DSN (its user needs CREATE/DROP on standintest_%), or
// else on the lab's MariaDB with its admin account.
func testDB(t *testing.T) DBConfig {
	t.Helper()
	dsn := os.Getenv("STANDIN_TEST_MYSQL_DSN")
	if dsn == "" {
		dir, err := lab.DefaultDir()
		if err != nil {
			t.Fatal(err)
		}
		l, err := lab.Load(dir)
		if err != nil {
			t.Fatalf("STANDIN_TEST_MYSQL_DSN is not set and the lab is not up (make lab): %v", err)
		}
		if dsn, err = l.AdminDSN(); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	host, portText, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	name := "standintest_" + randHex(4)
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8 COLLATE utf8_general_ci"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return DBConfig{Host: host, Port: port, Name: name, User: cfg.User, Password: cfg.Passwd}
}

func TestStoreLab(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, testDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 2; i++ { // idempotent
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := st.Setting(ctx, SettingHAEnabled); ok || err != nil {
		t.Errorf("unset setting: ok=%t err=%v", ok, err)
	}
	if err := st.SetSetting(ctx, SettingHAEnabled, "true"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.Setting(ctx, SettingHAEnabled); v != "true" || !ok || err != nil {
		t.Errorf("setting = %q %t %v", v, ok, err)
	}
	if v, err := st.EnsureSetting(ctx, SettingHAEnabled, "false"); v != "true" || err != nil {
		t.Errorf("EnsureSetting over existing = %q %v", v, err)
	}
	if err := st.AcquireLock(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := st.AcquireLock(ctx, "b"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by a") {
		t.Errorf("second lock: %v", err)
	}
	if err := st.ReleaseLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.AcquireLock(ctx, "b"); err != nil {
		t.Errorf("lock after release: %v", err)
	}
	b1 := CertBundle{Cert: []byte("c1"), Key: []byte("k1"), Chain: []byte("ch1")}
	if err := st.PutCertificate(ctx, certSystemSSL, b1); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCertificate(ctx, certSystemSSL, CertBundle{Cert: []byte("c2")}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := st.Certificate(ctx, certSystemSSL); !ok || err != nil || string(got.Chain) != "ch1" {
		t.Errorf("certificate = %q %t %v (first writer must win)", got.Chain, ok, err)
	}
	id, err := st.Register(ctx, Member{Name: "rs1", UUID: newUUID(), IP: "10.0.0.1", Ports: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Heartbeat(ctx, id); !ok || err != nil {
		t.Errorf("heartbeat: %t %v", ok, err)
	}
	if err := st.AssignIndex(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Heartbeat != 1 || ms[0].AssignedIndex != 1 || ms[0].Name != "rs1" {
		t.Errorf("members = %+v, %v", ms, err)
	}
	if err := st.DeleteMember(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Heartbeat(ctx, id); ok || err != nil {
		t.Errorf("heartbeat on deleted member: %t %v", ok, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBootstrapLab runs the bootstrap server against MySQL and performs the
// createscript / enable sequence haplan does.
func TestBootstrapLab(t *testing.T) {
	db := testDB(t)
	port := freePort(t)
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunBootstrap(ctx, BootstrapOptions{DB: db, InitDelay: 500 * time.Millisecond, Addr: fmt.Sprintf("127.0.0.1:%d", port),
			Owner: "test", Poll: 100 * time.Millisecond, LockWait: time.Second, Log: log.New(logs, "", 0)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("RunBootstrap = %v", err)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if code, _ := get(base + "/ping"); code != 0 {
		t.Fatal("port answered during initialisation")
	}
	waitFor(t, "pong", 10*time.Second, func() bool { _, b := get(base + "/ping"); return b == "pong" })
	if !strings.Contains(logs.String(), fmt.Sprintf("Startup Succeeded, Listening on port %d", port)) {
		t.Errorf("logs lack the startup line:\n%s", logs)
	}
	resp, err := http.Post(base+"/v1/haconfigs/haconfig/?action=createscript", "application/json",
		strings.NewReader(`{"hostRegistrationUrl":"https://127.0.0.1","clusterSize":1}`))
	if err != nil {
		t.Fatal(err)
	}
	script, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(script), "CATTLE_HA_CLUSTER_SIZE=1") || strings.Contains(string(script), db.Password) {
		t.Fatalf("createscript = %d\n%s", resp.StatusCode, script)
	}
	req, _ := http.NewRequest("PUT", base+"/v1/haconfigs/haconfig", strings.NewReader(`{"enabled":true}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT enabled: %v", err)
	} else {
		resp.Body.Close()
	}
	// The settings cache refreshes after the PUT's response: a GET right
	// after it may still see the old value, so look until it shows.
	var body string
	var coll struct {
		Data []struct {
			Enabled     bool   `json:"enabled"`
			ClusterSize int    `json:"clusterSize"`
			DBHost      string `json:"dbHost"`
		} `json:"data"`
	}
	waitFor(t, "enabled=true in GET /v1/haconfigs", 5*time.Second, func() bool {
		_, body = get(base + "/v1/haconfigs")
		return json.Unmarshal([]byte(body), &coll) == nil && len(coll.Data) == 1 && coll.Data[0].Enabled
	})
	if coll.Data[0].ClusterSize != 1 || coll.Data[0].DBHost != db.Host {
		t.Errorf("haconfigs = %s", body)
	}
	waitFor(t, "stops-processing log", 5*time.Second, func() bool { return strings.Contains(logs.String(), "stops processing") })
}

// haNode is one in-process HA node with its own etc dir and ports.
type haNode struct {
	name                 string
	etc                  string
	api, httpPort, https int
	logs                 *syncbuf.Buffer
	cancel               context.CancelFunc
	done                 chan error
	agent                testAgent
}

// testAgent stands in for the node's dockerd: Ensure fails while fail
// holds an error. (The real launch through dockerd, with the pull of the
// agent image, is proven on the lab's nodes by lab/prooftest.)
type testAgent struct {
	fail atomic.Pointer[error]
	id   string
}

// Identity is the node's, fixed for the test's life.
func (a *testAgent) Identity(context.Context) (string, error) { return "test-" + a.id, nil }

func (a *testAgent) Ensure(context.Context, string, []string) error {
	if e := a.fail.Load(); e != nil {
		return *e
	}
	return nil
}

func (n *haNode) start(t *testing.T, polls int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done, n.logs = cancel, make(chan error, 1), &syncbuf.Buffer{}
	opts := HAOptions{EtcDir: n.etc, Getenv: func(string) string { return "" }, RouteFile: "/nonexistent",
		APIAddr: fmt.Sprintf("127.0.0.1:%d", n.api), Hostname: n.name, Heartbeat: 150 * time.Millisecond,
		HostPoll: 100 * time.Millisecond, HostPolls: polls, Log: log.New(n.logs, n.name+" ", 0), Agent: &n.agent}
	go func() { n.done <- RunHA(ctx, opts) }()
}

func (n *haNode) stop() error {
	n.cancel()
	return <-n.done
}

// newHANodes renders one script for the cluster and "runs" it into a
// per-node etc dir, then gives each node its own ports and cluster IP.
func newHANodes(t *testing.T, db DBConfig, size int, names ...string) []*haNode {
	t.Helper()
	key := mustKey(t)
	enc, err := Encrypt(key, db.Password)
	if err != nil {
		t.Fatal(err)
	}
	d := ScriptData{DB: db, EncryptedPassword: enc, EncryptionKey: EncodeKey(key)}
	d.Input = DefaultScriptInput()
	d.Input.ClusterSize = size
	d.Input.HostRegistrationURL = "https://127.0.0.1"
	var nodes []*haNode
	for i, name := range names {
		root, _ := runScript(t, d, "rancher/server:v1.0.1")
		n := &haNode{name: name, etc: filepath.Join(root, "var/lib/rancher/etc"), api: freePort(t), httpPort: freePort(t), https: freePort(t)}
		n.agent.id = name
		extra := fmt.Sprintf("export CATTLE_HA_PORT_HTTP=%d\nexport CATTLE_HA_PORT_HTTPS=%d\n", n.httpPort, n.https)
		f, err := os.OpenFile(filepath.Join(n.etc, "server.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(extra)
		f.Close()
		write(t, filepath.Join(n.etc, "agent.conf"), []byte(fmt.Sprintf("export CATTLE_HA_CLUSTER_IP=127.0.0.%d\n", i+1)))
		nodes = append(nodes, n)
	}
	return nodes
}

// haHostStates are System HA's hosts by hostname: state/agentState.
func haHostStates(t *testing.T, apiPort int) map[string]string {
	t.Helper()
	_, body := get(fmt.Sprintf("http://127.0.0.1:%d/v1/projects?all=true", apiPort))
	var ps struct {
		Data []struct {
			UUID  string            `json:"uuid"`
			Links map[string]string `json:"links"`
		} `json:"data"`
	}
	out := map[string]string{}
	if json.Unmarshal([]byte(body), &ps) != nil {
		return out
	}
	for _, p := range ps.Data {
		if !strings.HasPrefix(p.UUID, "system-ha-") {
			continue
		}
		_, hb := get(p.Links["hosts"])
		var hs struct {
			Data []struct {
				Hostname, State string
				AgentState      *string
			} `json:"data"`
		}
		json.Unmarshal([]byte(hb), &hs)
		for _, h := range hs.Data {
			as := "null"
			if h.AgentState != nil {
				as = *h.AgentState
			}
			out[h.Hostname] = h.State + "/" + as
		}
	}
	return out
}

func activeHosts(t *testing.T, apiPort int) []string {
	t.Helper()
	var out []string
	for name, st := range haHostStates(t, apiPort) {
		if st == "active/null" || st == "active/active" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// migratedStore is a throwaway database with the stand-in's schema.
func migratedStore(t *testing.T) (DBConfig, *Store) {
	t.Helper()
	db := testDB(t)
	st, err := OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db, st
}

func TestHAClusterLab(t *testing.T) {
	db, st := migratedStore(t)
	nodes := newHANodes(t, db, 3, "rs1", "rs2", "rs3")
	// Pings every second, failed after one, reconnected after one failure:
	// a dead node's host shows "reconnecting" 2 s after its last report.
	for k, v := range map[string]string{settingPingSchedule: "1", settingPingTimeout: "1", settingPingFailures: "1"} {
		if err := st.SetSetting(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}

	// HA not enabled: the node exits.
	nodes[0].start(t, 10)
	if err := <-nodes[0].done; !errors.Is(err, ErrHANotEnabled) || !strings.Contains(err.Error(), "ha.enabled=") {
		t.Fatalf("RunHA without ha.enabled = %v", err)
	}
	if err := st.SetSetting(context.Background(), SettingHAEnabled, "true"); err != nil {
		t.Fatal(err)
	}

	// Two of three: the master gives up, nothing serves 80/443.
	nodes[0].start(t, 10)
	waitFor(t, "rs1 registered first", 5*time.Second, func() bool { return strings.Contains(nodes[0].logs.String(), "Currently Master: true") })
	nodes[1].start(t, 1000)
	waitFor(t, "2 active hosts", 10*time.Second, func() bool { return len(activeHosts(t, nodes[1].api)) == 2 })
	select {
	case err := <-nodes[0].done:
		if err == nil || !strings.Contains(err.Error(), "host(s) to be active") {
			t.Fatalf("master exit = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("master did not give up waiting for hosts")
	}
	if !strings.Contains(nodes[0].logs.String(), "Waiting for 3 host(s) to be active") || !strings.Contains(nodes[0].logs.String(), "Currently Master: true") {
		t.Errorf("master logs:\n%s", nodes[0].logs)
	}
	if code, _ := get(fmt.Sprintf("http://127.0.0.1:%d/ping", nodes[1].httpPort)); code != 0 {
		t.Error("port 80 served by an unformed cluster")
	}

	// The master restarts and the third node arrives: the cluster forms.
	nodes[0].start(t, 100)
	nodes[2].start(t, 100)
	for _, n := range nodes {
		waitFor(t, n.name+" serving", 20*time.Second, func() bool { return strings.Contains(n.logs.String(), "You can access the site at https://127.0.0.1") })
	}
	ca, err := os.ReadFile(filepath.Join(nodes[2].etc, "ssl", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(nodes[2].etc, "ssl", "ca.crt")); st.Mode().Perm() != 0o644 {
		t.Errorf("ca.crt mode %v", st.Mode().Perm())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("ca.crt holds no certificate")
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, n := range nodes {
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/ping", n.https))
		if err != nil {
			t.Fatalf("%s https: %v", n.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "pong" {
			t.Errorf("%s https ping = %q", n.name, b)
		}
		if _, b := get(fmt.Sprintf("http://127.0.0.1:%d/v1/scripts/ca.crt", n.httpPort)); b != string(ca) {
			t.Errorf("%s /v1/scripts/ca.crt differs from ca.crt", n.name)
		}
	}
	if got := activeHosts(t, nodes[0].api); len(got) != 3 {
		t.Errorf("active hosts = %v", got)
	}

	// One node fails: the others keep serving; its host stays in System
	// HA, "reconnecting" once its agent has missed the pings.
	if err := nodes[2].stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop rs3: %v", err)
	}
	waitFor(t, "rs3 reconnecting", 10*time.Second, func() bool { return len(activeHosts(t, nodes[1].api)) == 2 })
	if got := haHostStates(t, nodes[1].api); got["rs3"] != "active/reconnecting" {
		t.Errorf("rs3's host after it failed: %q, want active/reconnecting (all: %v)", got["rs3"], got)
	}
	if _, b := get(fmt.Sprintf("http://127.0.0.1:%d/ping", nodes[1].httpPort)); b != "pong" {
		t.Error("rs2 stopped serving after rs3 failed")
	}
	for _, n := range nodes[:2] {
		if err := n.stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stop %s: %v", n.name, err)
		}
	}
}

// A node whose agent cannot start (cluster-manager's recreate fails: the
// agent image cannot be pulled) is no active host of System HA, so a
// cluster of one never launches its stack; once the agent runs, it forms.
func TestHAAgentMustRunLab(t *testing.T) {
	db, st := migratedStore(t)
	if err := st.SetSetting(context.Background(), SettingHAEnabled, "true"); err != nil {
		t.Fatal(err)
	}
	n := newHANodes(t, db, 1, "rs1")[0]
	pullErr := errors.New("Error response from daemon: manifest for rancher/agent:v1.0.1 not found")
	n.agent.fail.Store(&pullErr)
	n.start(t, 1000)
	waitFor(t, "the agent failure logged", 10*time.Second, func() bool {
		return strings.Contains(n.logs.String(), "Can not launch agent right now: "+pullErr.Error())
	})
	waitFor(t, "the master waiting for its host", 10*time.Second, func() bool {
		return strings.Contains(n.logs.String(), "Waiting for 1 host(s) to be active")
	})
	if got := activeHosts(t, n.api); len(got) != 0 {
		t.Errorf("active hosts with no agent = %v", got)
	}
	n.agent.fail.Store(nil)
	waitFor(t, "the stack launched once the agent runs", 20*time.Second, func() bool {
		return strings.Contains(n.logs.String(), "Done launching management stack")
	})
	if got := activeHosts(t, n.api); len(got) != 1 {
		t.Errorf("active hosts = %v, want rs1", got)
	}
	if err := n.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop: %v", err)
	}
}

// The registry tables behave like memRegistry: insert-or-load by the
// natural key without burning ids, host ids from 1000, project ids from 10.
func TestRegistryStoreLab(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, testDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 2; i++ {
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	auto := Credential{AccountID: "1a1", Kind: kindRegistrationToken, Public: "A1", Secret: "s1", UUID: "u1", Created: 1, Life: lifecycle{State: "active"}, AutoKey: adminAutoToken}
	for i := 0; i < 3; i++ {
		c := auto
		if err := st.AddCredential(ctx, &c); err != nil || c.ID != 1 || c.Public != "A1" {
			t.Fatalf("auto credential %d: %+v %v", i, c, err)
		}
	}
	c := Credential{AccountID: "1a5", Kind: kindRegistrationToken, Public: "B2", Secret: "s2", UUID: "u2", Created: 2, Life: newLifecycle(time.UnixMilli(2), time.Second)}
	if err := st.AddCredential(ctx, &c); err != nil || c.ID != 2 {
		t.Fatalf("credential: %+v %v", c, err)
	}
	l := lifecycle{State: "inactive", Trans: "deactivating", Until: 5}
	if err := st.SetCredentialLife(ctx, c.ID, l); err != nil {
		t.Fatal(err)
	}
	cs, err := st.Credentials(ctx)
	if err != nil || len(cs) != 2 || cs[1].Life != l || cs[0].AutoKey != adminAutoToken || cs[1].AutoKey != "" {
		t.Errorf("credentials = %+v %v", cs, err)
	}
	for i := 0; i < 2; i++ {
		a := AgentRecord{Key: "k", AccountID: "1a5", Access: "AK", Secret: "SK", UUID: "ua", Created: 3, RegLife: lifecycle{State: "active"}, State: "active"}
		existed, err := st.AddAgent(ctx, &a)
		if err != nil || a.ID != 1 || existed != (i == 1) {
			t.Fatalf("agent %d: %+v %t %v", i, a, existed, err)
		}
	}
	if err := st.PingAgent(ctx, 1, 99, "active"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAgentState(ctx, 1, "inactive", 100); err != nil {
		t.Fatal(err)
	}
	ags, err := st.Agents(ctx)
	if err != nil || len(ags) != 1 || ags[0].LastPing != 99 || ags[0].HostAgentState != "active" || ags[0].State != "inactive" || ags[0].StateUntil != 100 {
		t.Errorf("agents = %+v %v", ags, err)
	}
	for i := 0; i < 3; i++ {
		h := HostRecord{AgentID: 1, ReportedUUID: "r1", AccountID: "1a5", UUID: "uh", Hostname: "h1", Labels: map[string]string{"a": "b"}, IP: "10.0.0.1", Created: 4, Life: lifecycle{State: "active"}}
		existed, err := st.AddHost(ctx, &h)
		if err != nil || h.ID != 1000 || existed != (i > 0) || h.Labels["a"] != "b" {
			t.Fatalf("host %d: %+v %t %v", i, h, existed, err)
		}
	}
	h2 := HostRecord{AgentID: 1, ReportedUUID: "r2", AccountID: "1a5", UUID: "uh2", Created: 5, Life: lifecycle{State: "active"}}
	if _, err := st.AddHost(ctx, &h2); err != nil || h2.ID != 1001 {
		t.Fatalf("second host: %+v %v", h2, err)
	}
	if err := st.ReportHost(ctx, 1000, "h1b", "10.0.0.2", map[string]string{"a": "c"}); err != nil {
		t.Fatal(err)
	}
	rl := lifecycle{State: "removed", Trans: "removing", Until: 7, Removed: 6, RemoveTime: 66}
	if err := st.SetHostLife(ctx, 1000, rl); err != nil {
		t.Fatal(err)
	}
	hs, err := st.Hosts(ctx)
	if err != nil || len(hs) != 2 || hs[0].Hostname != "h1b" || hs[0].IP != "10.0.0.2" || hs[0].Labels["a"] != "c" || hs[0].Life != rl {
		t.Errorf("hosts = %+v %v", hs, err)
	}
	p := ProjectRecord{Name: "staging", Description: "d", UUID: "up", Created: 8, Life: lifecycle{State: "active"}}
	if err := st.AddProject(ctx, &p); err != nil || p.ID != 10 {
		t.Fatalf("project: %+v %v", p, err)
	}
	ps, err := st.Projects(ctx)
	if err != nil || len(ps) != 1 || ps[0] != p {
		t.Errorf("projects = %+v %v", ps, err)
	}
}
