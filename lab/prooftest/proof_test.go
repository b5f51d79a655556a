//go:build lab

package prooftest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/haplan/haplan/lab"
)

const (
	image         = "rancher/server:v1.0.1"
	dbName        = "cattle_proof"
	dbUser        = "proof"
	bootstrapName = "proof-bootstrap"
	envFile       = "/root/proof-bootstrap.env"
	scriptFile    = "/root/rancher-ha.sh"
	caFile        = "/var/lib/rancher/etc/ssl/ca.crt"
	agentConf     = "/var/lib/rancher/etc/agent.conf"

	// cleanNodes is how haplan's e2e suite resets a node, plus this test's
	// own container and files.
	cleanNodes = "docker rm -f rancher-ha rancher-ha-agent haplan-bootstrap " + bootstrapName + " >/dev/null 2>&1; " +
		"docker rmi -f " + agentImage + " >/dev/null 2>&1; rm -rf /var/lib/rancher " + scriptFile + " " + envFile + "; true"

	// agentImage is what an HA node pulls at run time: setting
	// bootstrap.required.image (cattle v0.159.7 cattle-global.properties).
	agentImage = "rancher/agent:v1.0.1"
)

func TestProof(t *testing.T) {
	dir, err := lab.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(dir)
	if errors.Is(err, lab.ErrNotUp) {
		t.Fatalf("the lab is not up (make lab): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatalf("OpenSSH client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	p := &proof{t: t, l: l, http: newHTTPClient(nil)}
	for _, h := range l.ByRole(lab.RoleNode) {
		p.nodes = append(p.nodes, node{name: h.Name, ip: h.IP})
	}
	if len(p.nodes) != 3 {
		t.Fatalf("the procedure needs a 3-node lab, this one has %d nodes", len(p.nodes))
	}
	if p.admin, err = openAdmin(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.admin.Close() })

	// Start from nodes as fresh as `make lab` leaves them, and leave them so
	// (also after a failure).
	p.reset(ctx, "before")
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		p.t = t
		p.reset(cctx, "after")
	})

	steps := []struct {
		name string
		f    func(*testing.T, context.Context, *proof)
	}{
		{"SSHStrictHostKeys", testSSH},
		{"DockerPullThroughMirror", testPull},
		{"MariaDBAdminLogin", testDBAdmin},
		{"ManualHAProcedure", testProcedure},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			p.t = t
			s.f(t, ctx, p)
		})
		p.t = t
		if !ok {
			t.Fatalf("%s failed; not going on", s.name)
		}
	}
}

// reset removes rancher-ha, the bootstrap containers and /var/lib/rancher
// on every node (behind the back, with docker exec, so that it works even
// if sshd does not), and this test's database and users.
func (p *proof) reset(ctx context.Context, when string) {
	t := p.t
	t.Helper()
	for _, n := range p.nodes {
		if out, err := p.l.Exec(ctx, n.name, nil, "sh", "-c", cleanNodes); err != nil {
			t.Errorf("clean %s %s: %v\n%s", n.name, when, err, out)
		}
	}
	stmts := []string{"DROP DATABASE IF EXISTS `" + dbName + "`"}
	for _, n := range p.nodes {
		stmts = append(stmts, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%s'", dbUser, n.ip))
	}
	for _, s := range stmts {
		if _, err := p.admin.ExecContext(ctx, s); err != nil {
			t.Errorf("clean database %s: %s: %v", when, s, err)
		}
	}
}

// 1. Every SSH host answers `hostname` with its own name over OpenSSH with
// strict host-key checking against lab/out/ssh/known_hosts; with a
// known_hosts that does not list the host, the same login is refused.
func testSSH(t *testing.T, ctx context.Context, p *proof) {
	n := 0
	for _, h := range p.l.Hosts {
		if !h.Role.HasSSH() {
			continue
		}
		n++
		out, err := sshRun(ctx, p.l, p.l.SSH.KnownHostsFile, h.IP, nil, "hostname")
		if err != nil {
			t.Errorf("%s: %v", h.Name, err)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != h.Name {
			t.Errorf("%s (%s): hostname = %q", h.Name, h.IP, got)
		}
	}
	if n == 0 {
		t.Fatal("no SSH hosts in lab.json")
	}
	t.Logf("%d hosts: hostname over ssh with StrictHostKeyChecking=yes", n)

	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sshRun(ctx, p.l, empty, p.nodes[0].ip, nil, "hostname")
	if err == nil || !strings.Contains(err.Error(), "Host key verification failed") {
		t.Errorf("ssh with an empty known_hosts: err = %v, want host key verification failure", err)
	}
}

// 2. `docker pull rancher/server:v1.0.1` works on every node with the image
// removed first: there is no Internet, so the registry mirror serves it.
func testPull(t *testing.T, ctx context.Context, p *proof) {
	ids := map[string]string{}
	for _, n := range p.nodes {
		mirrors := p.ssh(ctx, n, nil, "docker info --format '{{json .RegistryConfig.Mirrors}}'")
		if !strings.Contains(mirrors, strings.TrimSuffix(p.l.RegistryMirror, "/")) {
			t.Errorf("%s: registry mirrors %s, want %s", n.name, strings.TrimSpace(mirrors), p.l.RegistryMirror)
		}
		p.ssh(ctx, n, nil, "docker rmi -f "+image+" >/dev/null 2>&1; true")
		start := time.Now()
		out := p.ssh(ctx, n, nil, "docker pull "+image)
		if !strings.Contains(out, "Status: Downloaded newer image for "+image) {
			t.Errorf("%s: docker pull %s:\n%s", n.name, image, out)
		}
		ids[n.name] = strings.TrimSpace(p.ssh(ctx, n, nil, "docker image inspect -f '{{.Id}}' "+image))
		t.Logf("%s: pulled %s (%s) in %s", n.name, image, ids[n.name], time.Since(start).Round(time.Millisecond))
	}
	for _, n := range p.nodes[1:] {
		if ids[n.name] != ids[p.nodes[0].name] {
			t.Errorf("%s has image %s, %s has %s", n.name, ids[n.name], p.nodes[0].name, ids[p.nodes[0].name])
		}
	}
}

// 3. The admin logs in to MariaDB from this machine.
func testDBAdmin(t *testing.T, ctx context.Context, p *proof) {
	var version, user string
	if err := p.admin.QueryRowContext(ctx, "SELECT VERSION(), CURRENT_USER()").Scan(&version, &user); err != nil {
		t.Fatalf("admin login to %s:%d: %v", p.l.DB.Host, p.l.DB.Port, err)
	}
	if !strings.Contains(version, "MariaDB") || !strings.HasPrefix(user, p.l.DB.AdminUser+"@") {
		t.Errorf("VERSION() = %q, CURRENT_USER() = %q", version, user)
	}
	t.Logf("logged in to %s:%d as %s, server %s", p.l.DB.Host, p.l.DB.Port, user, version)
}

// 4. The upstream manual procedure (rancher-1.0-ha.md sections 1-4), by hand.
func testProcedure(t *testing.T, ctx context.Context, p *proof) {
	begin := time.Now()
	rs1 := p.nodes[0]
	lbIP := p.l.IP("lb")
	if lbIP == "" {
		t.Fatal("no lb in lab.json")
	}
	regURL := "https://" + lbIP
	bootstrapURL := "http://" + net.JoinHostPort(rs1.ip, "8080")

	// Diagnostics on failure, before the cleanup wipes the evidence.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		for _, n := range p.nodes {
			for _, c := range []string{bootstrapName, "rancher-ha"} {
				out, _ := p.sshQuiet(dctx, n, "docker logs --tail 40 "+c+" 2>&1")
				t.Logf("%s: docker logs %s:\n%s", n.name, c, out)
			}
		}
	})

	// The database and its user, granted at every node's IP.
	pw := randomHex(t, 16)
	if _, err := p.admin.ExecContext(ctx,
		"CREATE DATABASE `"+dbName+"` COLLATE = 'utf8_general_ci' CHARACTER SET = 'utf8'"); err != nil {
		t.Fatal(err)
	}
	for _, n := range p.nodes {
		if _, err := p.admin.ExecContext(ctx, "CREATE USER ?@? IDENTIFIED BY ?", dbUser, n.ip, pw); err != nil {
			t.Fatalf("create user %s@%s: %v", dbUser, n.ip, err)
		}
		if _, err := p.admin.ExecContext(ctx, "GRANT ALL ON `"+dbName+"`.* TO ?@?", dbUser, n.ip); err != nil {
			t.Fatalf("grant to %s@%s: %v", dbUser, n.ip, err)
		}
	}
	var cs, coll string
	if err := p.admin.QueryRowContext(ctx,
		"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
		dbName).Scan(&cs, &coll); err != nil {
		t.Fatal(err)
	}
	if cs != "utf8" && cs != "utf8mb3" || !strings.HasSuffix(coll, "_general_ci") || !strings.HasPrefix(coll, "utf8") {
		t.Errorf("database %s: charset %s collation %s, want utf8/utf8_general_ci", dbName, cs, coll)
	}
	t.Logf("database %s (%s/%s), user %s granted at %d node IPs", dbName, cs, coll, dbUser, len(p.nodes))

	// The bootstrap server on rs1, exactly as the upstream doc runs it.
	p.startBootstrap(ctx, rs1, pw)
	hc := p.waitBootstrap(ctx, bootstrapURL)
	if hc.ID != "haConfig" || hc.Type != "haConfig" {
		t.Errorf("haConfig id/type = %q/%q", hc.ID, hc.Type)
	}
	if hc.DBHost != p.l.DB.Host {
		t.Errorf("haConfig dbHost = %q, want the external DB %s", hc.DBHost, p.l.DB.Host)
	}
	if hc.Enabled || hc.ClusterSize != 0 {
		t.Errorf("fresh haConfig: enabled=%t clusterSize=%d, want false/0", hc.Enabled, hc.ClusterSize)
	}
	p.checkAccessControl(ctx, bootstrapURL)

	// createscript: hostRegistrationUrl is required ...
	action := hc.Actions["createscript"]
	if action == "" || hc.Links["self"] == "" {
		t.Fatalf("haConfig has no createscript action or self link: %+v", hc)
	}
	resp, body, err := do(ctx, p.http, http.MethodPost, action, map[string]any{"clusterSize": 3})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(body, []byte("hostRegistrationUrl")) {
		t.Errorf("createscript without hostRegistrationUrl: %s %s, want a 422 API error naming the field", resp.Status, body)
	}
	// ... and with it, the script comes back as a download.
	resp, script, err := do(ctx, p.http, http.MethodPost, action,
		map[string]any{"clusterSize": 3, "hostRegistrationUrl": regURL})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("createscript: %s %s", resp.Status, script)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("createscript Content-Type = %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=rancher-ha.sh" {
		t.Errorf("createscript Content-Disposition = %q", cd)
	}
	// script.ftl: unquoted here-documents and values (cattle v0.159.7
	// resources/content/haconfig/script.ftl lines 14-24).
	for _, want := range []string{"#!/bin/sh\n", "cat > /var/lib/rancher/etc/server.conf << EOF\n", "export CATTLE_HA_CLUSTER_SIZE=3\n",
		"export CATTLE_HA_HOST_REGISTRATION_URL=" + regURL + "\n",
		"export CATTLE_DB_CATTLE_MYSQL_HOST=" + p.l.DB.Host + "\n",
		"export CATTLE_DB_CATTLE_MYSQL_NAME=" + dbName + "\n",
		"export CATTLE_DB_CATTLE_USERNAME=" + dbUser + "\n"} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("rancher-ha.sh lacks %q", want)
		}
	}
	if bytes.Contains(script, []byte(pw)) {
		t.Fatal("rancher-ha.sh holds the DB password in clear text")
	}
	t.Logf("createscript: %d-byte rancher-ha.sh, DB password encrypted", len(script))
	if hc, err = getHAConfig(ctx, p.http, bootstrapURL); err != nil {
		t.Fatal(err)
	}
	if hc.ClusterSize != 3 || hc.Enabled {
		t.Errorf("haConfig after createscript: clusterSize=%d enabled=%t, want 3/false", hc.ClusterSize, hc.Enabled)
	}

	// (a) Without the `enabled` PUT the cluster must not form.
	p.removeBootstrap(ctx, rs1)
	for _, n := range p.nodes {
		p.ssh(ctx, n, script, fmt.Sprintf("umask 077 && mkdir -p %s && printf 'export CATTLE_HA_CLUSTER_IP=%%s\\n' %s > %s && cat > %s",
			filepath.Dir(agentConf), n.ip, agentConf, scriptFile))
	}
	p.runScript(ctx, p.nodes)
	t.Logf("(a) rancher-ha.sh started on all %d nodes without enabling HA", len(p.nodes))
	notEnabled := map[string]bool{}
	p.observe(20*time.Second, func() {
		for _, n := range p.nodes {
			for _, port := range []string{"443", "80"} {
				if listening(net.JoinHostPort(n.ip, port)) {
					t.Fatalf("(a) HA not enabled, yet %s serves :%s", n.name, port)
				}
			}
			if !notEnabled[n.name] {
				logs, _ := p.sshQuiet(ctx, n, "docker logs rancher-ha 2>&1")
				notEnabled[n.name] = strings.Contains(logs, "HA is not enabled")
			}
		}
	})
	for _, n := range p.nodes {
		if !notEnabled[n.name] {
			t.Errorf("(a) %s: docker logs rancher-ha never said \"HA is not enabled\"", n.name)
		}
	}
	// Not asserted: the real cluster-manager registers in the cluster table
	// and starts its cattle before it checks ha.enabled (rancher-1.0-ha.md
	// section 3, "Master startup"); the stand-in checks first.
	if ms, err := clusterRows(ctx, p.admin, dbName); err == nil {
		t.Logf("(a) cluster table: %d rows", len(ms))
	}
	for _, n := range p.nodes {
		p.ssh(ctx, n, nil, "docker rm -f rancher-ha >/dev/null")
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("(a) did not form in 20 s: nothing on :443/:80, every node logged \"HA is not enabled\"; rancher-ha removed")

	// (b) Enable HA on the bootstrap server (same DB), then stop it.
	p.startBootstrap(ctx, rs1, pw)
	hc = p.waitBootstrap(ctx, bootstrapURL)
	if hc.Enabled || hc.ClusterSize != 3 {
		t.Errorf("haConfig on the restarted bootstrap: enabled=%t clusterSize=%d, want false/3", hc.Enabled, hc.ClusterSize)
	}
	resp, body, err = do(ctx, p.http, http.MethodPut, hc.Links["self"], map[string]any{"enabled": true})
	if err != nil {
		t.Fatal(err)
	}
	// The answer carries the old value: cattle v0.159.7
	// HaConfigManager.updateInternal answers getHaConfig() from the settings
	// cache, which SettingsUtils.changeSetting refreshes only after the
	// response (DeferredUtils.defer(ArchaiusUtil.refresh)). A later GET
	// shows the new one.
	var put haConfig
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &put) != nil || put.Type != "haConfig" {
		t.Fatalf("PUT %s {enabled:true}: %s %s", hc.Links["self"], resp.Status, body)
	}
	if put.Enabled {
		t.Errorf("(b) the PUT answered enabled=true; the real server answers the old value, false")
	}
	settled := time.Now()
	for hc.Enabled = false; !hc.Enabled; {
		if hc, err = getHAConfig(ctx, p.http, bootstrapURL); err != nil {
			t.Fatal(err)
		}
		if time.Since(settled) > 10*time.Second {
			t.Fatalf("haConfig still says enabled=false 10 s after the PUT")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("(b) the PUT answered enabled=false (the cached value); GET showed enabled=true %s later", time.Since(settled).Round(time.Millisecond))
	var enabled string
	if err := p.admin.QueryRowContext(ctx, "SELECT value FROM `"+dbName+"`.setting WHERE name = 'ha.enabled'").Scan(&enabled); err != nil || enabled != "true" {
		t.Errorf("setting ha.enabled in the DB = %q (%v), want true", enabled, err)
	}
	t.Logf("(b) PUT %s {\"enabled\": true}: enabled=true, ha.enabled=true in %s", hc.Links["self"], dbName)
	p.removeBootstrap(ctx, rs1)

	// The same script (generated once, above) on two of three nodes: the
	// cluster must not report itself up.
	two, third := p.nodes[:2], p.nodes[2]
	started2 := time.Now()
	p.runScript(ctx, two)
	t.Logf("(b) rancher-ha.sh started on %s and %s", two[0].name, two[1].name)
	maxActive := 0
	var lastActive []string
	p.observe(20*time.Second, func() {
		for _, n := range p.nodes {
			for _, port := range []string{"443", "80"} {
				if listening(net.JoinHostPort(n.ip, port)) {
					t.Fatalf("(b) only 2 of 3 nodes started, yet %s serves :%s", n.name, port)
				}
			}
		}
		for _, n := range two {
			active, err := activeHAHosts(ctx, p.http, "http://"+net.JoinHostPort(n.ip, "18080"))
			if err != nil {
				continue // 18080 not up yet
			}
			if len(active) > 2 {
				t.Fatalf("(b) %s:18080 shows %d active HA hosts %v with 2 nodes started", n.name, len(active), active)
			}
			if len(active) >= maxActive {
				maxActive, lastActive = len(active), active
			}
		}
	})
	if maxActive != 2 {
		t.Fatalf("(b) hosts view never showed the 2 started nodes as active within 20 s (max %d: %v)", maxActive, lastActive)
	}
	slices.Sort(lastActive)
	if diff := cmp.Diff([]string{two[0].ip, two[1].ip}, lastActive); diff != "" {
		t.Errorf("(b) active HA hosts (-want +got):\n%s", diff)
	}
	waiting := false
	for _, n := range two {
		logs, _ := p.sshQuiet(ctx, n, "docker logs rancher-ha 2>&1")
		// cluster-manager v0.1.4 rancher/rancher.go WaitForHosts logs the
		// count it waits for: the cluster size.
		waiting = waiting || strings.Contains(logs, "Waiting for 3 host(s) to be active")
	}
	if !waiting {
		t.Errorf("(b) no node logged \"Waiting for 3 host(s) to be active\"")
	}
	t.Logf("(b) 2 of 3 started: hosts view shows 2 active, nothing on :443/:80 for 20 s")

	// The third node: the cluster forms.
	started3 := time.Now()
	p.runScript(ctx, []node{third})
	t.Logf("(b) rancher-ha.sh started on %s (%s after the first two)", third.name, started3.Sub(started2).Round(time.Second))
	var ms []member
	var master node
	deadline := time.Now().Add(90 * time.Second)
	for {
		ready, why := p.formed(ctx, &ms, &master)
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("(b) no 3-node cluster 90 s after starting %s: %s", third.name, why)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("(b) formed %s after starting %s: master %s, cluster table %v",
		time.Since(started3).Round(time.Second), third.name, master.name, ms)

	logs := p.ssh(ctx, master, nil, "docker logs rancher-ha 2>&1")
	for _, want := range []string{"Currently Master: true", "Done launching management stack", "You can access the site at " + regURL} {
		if !strings.Contains(logs, want) {
			t.Errorf("(b) master %s: docker logs rancher-ha lacks %q", master.name, want)
		}
	}

	// The same CA on every node, and TLS on every node's 443 verified
	// against it for the registration host.
	var ca []byte
	sums := map[string]string{}
	for _, n := range p.nodes {
		out := p.ssh(ctx, n, nil, "stat -c %a "+caFile+" && cat "+caFile)
		mode, pemText, _ := strings.Cut(out, "\n")
		if mode != "644" {
			t.Errorf("%s: %s mode %s, want 644", n.name, caFile, mode)
		}
		sum := sha256.Sum256([]byte(pemText))
		sums[n.name] = hex.EncodeToString(sum[:])
		if ca == nil {
			ca = []byte(pemText)
		}
	}
	for _, n := range p.nodes[1:] {
		if sums[n.name] != sums[p.nodes[0].name] {
			t.Errorf("%s: ca.crt sha256 %s, %s has %s", n.name, sums[n.name], p.nodes[0].name, sums[p.nodes[0].name])
		}
	}
	block, _ := pem.Decode(ca)
	if block == nil {
		t.Fatalf("%s is not PEM", caFile)
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !caCert.IsCA {
		t.Fatalf("%s: not a CA certificate (%v)", caFile, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	tlsClient := newHTTPClient(&tls.Config{RootCAs: pool, ServerName: lbIP, MinVersion: tls.VersionTLS12})
	untrusted := newHTTPClient(&tls.Config{ServerName: lbIP, MinVersion: tls.VersionTLS12})
	for _, n := range p.nodes {
		if err := ping(ctx, tlsClient, "https://"+net.JoinHostPort(n.ip, "443")); err != nil {
			t.Errorf("%s: TLS verified against ca.crt: %v", n.name, err)
		}
		if err := ping(ctx, p.http, "http://"+n.ip); err != nil {
			t.Errorf("%s: HTTP :80: %v", n.name, err)
		}
		var uerr x509.UnknownAuthorityError
		if err := ping(ctx, untrusted, "https://"+net.JoinHostPort(n.ip, "443")); !errors.As(err, &uerr) {
			t.Errorf("%s: :443 without the lab CA: err = %v, want unknown authority", n.name, err)
		}
	}
	t.Logf("(b) ca.crt sha256 %s on all 3 nodes (CA %q); https://<node>:443/ping verified for ServerName %s on all 3",
		sums[p.nodes[0].name], caCert.Subject, lbIP)
	p.checkQuirks(ctx, caCert, lbIP)
	t.Logf("procedure took %s", time.Since(begin).Round(time.Second))
}

// formed reports whether the 3-node cluster is up: the cluster table has
// one row per node with indexes 1..3, every node's hosts view shows the 3
// nodes active, the master logged the management stack, and every node
// has ca.crt and serves :443. why says what is still missing.
func (p *proof) formed(ctx context.Context, ms *[]member, master *node) (bool, string) {
	rows, err := clusterRows(ctx, p.admin, dbName)
	if err != nil {
		return false, fmt.Sprintf("cluster table: %v", err)
	}
	*ms = rows
	var ips []string
	var idx []int
	for _, m := range rows {
		ips = append(ips, m.IP)
		idx = append(idx, m.AssignedIndex)
	}
	slices.Sort(ips)
	slices.Sort(idx)
	want := []string{p.nodes[0].ip, p.nodes[1].ip, p.nodes[2].ip}
	slices.Sort(want)
	if !slices.Equal(ips, want) || !slices.Equal(idx, []int{1, 2, 3}) {
		return false, fmt.Sprintf("cluster table %v", rows)
	}
	for _, n := range p.nodes {
		if n.ip == rows[0].IP { // the lowest id is master
			*master = n
		}
	}
	for _, n := range p.nodes {
		active, err := activeHAHosts(ctx, p.http, "http://"+net.JoinHostPort(n.ip, "18080"))
		if err != nil {
			return false, fmt.Sprintf("%s hosts view: %v", n.name, err)
		}
		slices.Sort(active)
		if !slices.Equal(active, want) {
			return false, fmt.Sprintf("%s hosts view: active %v", n.name, active)
		}
	}
	logs, err := p.sshQuiet(ctx, *master, "docker logs rancher-ha 2>&1")
	if err != nil || !strings.Contains(logs, "Done launching management stack") {
		return false, fmt.Sprintf("master %s has not logged \"Done launching management stack\" (%v)", master.name, err)
	}
	for _, n := range p.nodes {
		if _, err := p.sshQuiet(ctx, n, "test -s "+caFile); err != nil {
			return false, fmt.Sprintf("%s has no %s", n.name, caFile)
		}
		if !listening(net.JoinHostPort(n.ip, "443")) {
			return false, fmt.Sprintf("%s does not serve :443", n.name)
		}
	}
	return true, ""
}

// startBootstrap runs the bootstrap server on n as the upstream doc does,
// with the CATTLE_DB_* settings in a 0600 env file written over ssh's stdin
// (never in argv) and removed once docker has read it.
func (p *proof) startBootstrap(ctx context.Context, n node, pw string) {
	t := p.t
	t.Helper()
	env := fmt.Sprintf("CATTLE_DB_CATTLE_MYSQL_HOST=%s\nCATTLE_DB_CATTLE_MYSQL_PORT=%d\nCATTLE_DB_CATTLE_MYSQL_NAME=%s\nCATTLE_DB_CATTLE_USERNAME=%s\nCATTLE_DB_CATTLE_PASSWORD=%s\n",
		p.l.DB.Host, p.l.DB.Port, dbName, dbUser, pw)
	mode := p.ssh(ctx, n, []byte(env), "umask 077 && cat > "+envFile+" && chmod 600 "+envFile+" && stat -c %a "+envFile)
	if strings.TrimSpace(mode) != "600" {
		t.Errorf("%s: %s has mode %s", n.name, envFile, mode)
	}
	p.ssh(ctx, n, nil, "docker run -d --name "+bootstrapName+" -p 8080:8080 --env-file "+envFile+
		" -v /var/run/docker.sock:/var/run/docker.sock "+image+"; rc=$?; rm -f "+envFile+"; exit $rc")
	t.Logf("%s: docker run -d --name %s -p 8080:8080 --env-file (0600) -v /var/run/docker.sock:/var/run/docker.sock %s",
		n.name, bootstrapName, image)
}

// waitBootstrap waits for /ping == pong, then returns the haConfig.
func (p *proof) waitBootstrap(ctx context.Context, base string) haConfig {
	t := p.t
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 2*time.Minute {
		if err = ping(ctx, p.http, base); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("bootstrap server: no pong in 2 minutes: %v", err)
	}
	t.Logf("bootstrap server answered /ping with pong after %s", time.Since(start).Round(time.Second))
	hc, err := getHAConfig(ctx, p.http, base)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// removeBootstrap stops and removes the bootstrap server ("stop and
// remove" in the v1.0.1-era doc) and checks 8080 is free.
func (p *proof) removeBootstrap(ctx context.Context, n node) {
	p.t.Helper()
	p.ssh(ctx, n, nil, "docker stop "+bootstrapName+" >/dev/null && docker rm "+bootstrapName+" >/dev/null")
	if listening(net.JoinHostPort(n.ip, "8080")) {
		p.t.Errorf("%s: 8080 still open after removing %s", n.name, bootstrapName)
	}
}

// runScript runs `sh rancher-ha.sh rancher/server:v1.0.1` on the nodes at
// the same time.
func (p *proof) runScript(ctx context.Context, ns []node) {
	t := p.t
	t.Helper()
	errs := parallel(ns, func(n node) error {
		out, err := sshRun(ctx, p.l, p.l.SSH.KnownHostsFile, n.ip, nil, "sh "+scriptFile+" "+image)
		if err != nil {
			return err
		}
		if !bytes.Contains(out, []byte("Started container rancher-ha")) {
			return fmt.Errorf("sh rancher-ha.sh: unexpected output:\n%s", out)
		}
		return nil
	})
	for name, err := range errs {
		t.Errorf("%s: %v", name, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// observe calls check every 2 s for d.
func (p *proof) observe(d time.Duration, check func()) {
	end := time.Now().Add(d)
	for {
		check()
		if time.Now().After(end) {
			return
		}
		time.Sleep(2 * time.Second)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// checkQuirks proves, on the formed cluster, the behaviours of the real
// server that a client must live with (rancher-1.0-ha.md, opening section
// and section 10), each with its source.
func (p *proof) checkQuirks(ctx context.Context, caCert *x509.Certificate, lbIP string) {
	t := p.t
	t.Helper()
	rs1 := p.nodes[0]
	api := "http://" + net.JoinHostPort(rs1.ip, "18080")

	// Projects: System HA only with all=true.
	if listed, err := memberProjectsHaveSystemHA(ctx, p.http, api); err != nil || listed {
		t.Errorf("GET /v1/projects without all=true lists System HA (%v); the real server lists only member projects", err)
	}

	// SANs: localhost, rancher and u.Host of the registration URL, as a DNS
	// name and, being an IP, as an IP SAN too (cluster-manager v0.1.4
	// service/cluster_service.go, rancher/ssl.go).
	leaf := p.serverCert(ctx, rs1, caCert)
	if leaf != nil {
		if want := []string{"localhost", "rancher", lbIP}; !slices.Equal(leaf.DNSNames, want) {
			t.Errorf("server certificate DNS SANs %v, want %v", leaf.DNSNames, want)
		}
		if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != lbIP {
			t.Errorf("server certificate IP SANs %v, want [%s]", leaf.IPAddresses, lbIP)
		}
	}

	// The agent: every node pulled rancher/agent:v1.0.1 through its dockerd
	// (the registry mirror) and runs it (cluster-manager's recreate).
	for _, n := range p.nodes {
		out := p.ssh(ctx, n, nil, "docker image inspect -f '{{.Id}}' "+agentImage+" && docker inspect -f '{{.State.Running}} {{.Config.Image}}' rancher-ha-agent")
		if !strings.HasSuffix(strings.TrimSpace(out), "true "+agentImage) {
			t.Errorf("%s: agent image and container: %s", n.name, out)
		}
	}

	// A node whose agent cannot start is no active host: point the setting
	// at an image the registry does not have, take rs3's agent away, and
	// watch it drop out; put the setting back and it returns.
	third := p.nodes[2]
	const missing = "rancher/agent:v0.0.0-missing"
	if _, err := p.admin.ExecContext(ctx, "INSERT INTO `"+dbName+"`.setting (name, value) VALUES ('bootstrap.required.image', ?)", missing); err != nil {
		t.Fatal(err)
	}
	p.ssh(ctx, third, nil, "docker rm -f rancher-ha-agent >/dev/null")
	want := []string{p.nodes[0].ip, p.nodes[1].ip}
	slices.Sort(want)
	p.waitHosts(ctx, api, want, "rs3 gone from the active hosts while its agent cannot be pulled")
	logs := p.ssh(ctx, third, nil, "docker logs rancher-ha 2>&1")
	if !strings.Contains(logs, "Can not launch agent right now:") {
		t.Errorf("%s: no \"Can not launch agent right now\" in docker logs rancher-ha", third.name)
	}
	if _, err := p.admin.ExecContext(ctx, "DELETE FROM `"+dbName+"`.setting WHERE name = 'bootstrap.required.image'"); err != nil {
		t.Fatal(err)
	}
	want = []string{p.nodes[0].ip, p.nodes[1].ip, third.ip}
	slices.Sort(want)
	p.waitHosts(ctx, api, want, "rs3 back once its agent image can be had")
	t.Logf("quirks: no System HA without all=true; SANs %v %v; %s pulled and run on every node; rs3 inactive while its agent image was missing",
		leaf.DNSNames, leaf.IPAddresses, agentImage)
}

// waitHosts waits up to 75 s for the active System HA hosts to be want:
// a node whose agent stopped reporting turns "reconnecting" after the ping
// budget, 6 failed pings 5 s apart plus the 15 s timeout (cattle v0.159.7
// agent-server defaults.properties), and is then no active host here.
func (p *proof) waitHosts(ctx context.Context, api string, want []string, what string) {
	p.t.Helper()
	var got []string
	deadline := time.Now().Add(75 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if got, err = activeHAHosts(ctx, p.http, api); err == nil {
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
		}
		time.Sleep(time.Second)
	}
	p.t.Fatalf("%s: active hosts %v, want %v", what, got, want)
}

// serverCert is the certificate n serves on 443, verified against ca.
func (p *proof) serverCert(ctx context.Context, n node, ca *x509.Certificate) *x509.Certificate {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // verified below against ca
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(n.ip, "443"))
	if err != nil {
		p.t.Errorf("%s:443: %v", n.name, err)
		return nil
	}
	defer c.Close()
	certs := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		p.t.Errorf("%s:443 sent no certificate", n.name)
		return nil
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		p.t.Errorf("%s:443 certificate does not chain to ca.crt: %v", n.name, err)
	}
	return certs[0]
}

// checkAccessControl switches access control on and off on one server as
// an operator does, and proves what the real one does (cattle v0.159.7:
// AdminAuthLookUp answers the admin only while api.security.enabled is
// false; BasicAuthImpl / AuthDaoImpl.getAccountByKeys take an API key
// pair; ApiAuthenticator answers 401 with a Basic challenge; /ping is in
// api.ignore.paths): off, a wrong key still runs as the admin; on, /v1
// without a valid key is 401 and /ping is open; off again, open again.
func (p *proof) checkAccessControl(ctx context.Context, base string) {
	t := p.t
	t.Helper()
	resp, body, err := do(ctx, p.http, http.MethodPost, base+"/v1/apikeys", map[string]any{"name": "proof"})
	var key struct{ PublicValue, SecretValue string }
	if err != nil || resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &key) != nil || key.PublicValue == "" {
		t.Fatalf("POST /v1/apikeys: %v %v %s", err, resp, body)
	}
	if resp, _, err := doAs(ctx, p.http, key.PublicValue, "wrong", http.MethodGet, base+"/v1/haconfigs", nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("access control off, wrong secret: %v %v, want 200 (runs as the admin)", err, resp)
	}
	if resp, body, err = do(ctx, p.http, http.MethodPost, base+"/v1/localauthconfig", map[string]any{"enabled": true, "username": "admin", "password": "proof-pw"}); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("enable access control: %v %v %s", err, resp, body)
	}
	resp, _, err = do(ctx, p.http, http.MethodGet, base+"/v1/haconfigs", nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("access control on, no key: %v %v, want 401 with a Basic challenge", err, resp)
	}
	if err := ping(ctx, p.http, base); err != nil {
		t.Errorf("access control on: /ping must stay open: %v", err)
	}
	if resp, _, err := doAs(ctx, p.http, key.PublicValue, "wrong", http.MethodGet, base+"/v1/haconfigs", nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("access control on, wrong secret: %v %v, want 401", err, resp)
	}
	if resp, _, err := doAs(ctx, p.http, key.PublicValue, key.SecretValue, http.MethodGet, base+"/v1/projects?all=true", nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("access control on, the admin's key: %v %v, want 200", err, resp)
	}
	if resp, body, err := doAs(ctx, p.http, key.PublicValue, key.SecretValue, http.MethodPut, base+"/v1/settings/api.security.enabled", map[string]any{"value": "false"}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("switch access control off: %v %v %s", err, resp, body)
	}
	if resp, _, err := do(ctx, p.http, http.MethodGet, base+"/v1/haconfigs", nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("access control off again, no key: %v %v, want 200", err, resp)
	}
	t.Logf("access control: off, a wrong key runs as the admin; on, /v1 is 401 with a Basic challenge without the key pair, /ping open; off again")
}
