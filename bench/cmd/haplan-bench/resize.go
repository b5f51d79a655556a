package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/lab"
	"github.com/haplan/haplan/layout"
)

// manualResize grows the lab's cluster from its three nodes to five (the
// spares) as an operator's script does it by hand, with the steps of
// rancher-1.0-ha.md section 9 (the docs never describe a resize). Before
// the outage: the new nodes' grants (the mysql client), the server image
// pulled on them (the documented install step), the database backed up
// with Rancher's options, a new rancher-ha.sh from createscript on the
// running cluster through the load balancer (clusterSize 5, the same
// registration URL), copied to every node, the load balancer's pool
// extended (haproxy.cfg edited, checked by haproxy, reloaded). Then
// the outage: every old node's rancher containers removed, one node after
// the other, and the new script run on every node, one after the other.
// It returns when the first old node was stopped.
func (c *config) manualResize(ctx context.Context) (time.Time, error) {
	olds := c.lab.ByRole(lab.RoleNode)
	news := c.lab.ByRole(lab.RoleSpare)[:2]
	all := append(slices.Clone(olds), news...)
	if err := c.manualGrants(ctx, news); err != nil {
		return time.Time{}, err
	}
	for _, n := range news {
		if _, err := c.ssh(ctx, nil, n.Name, "docker pull "+lab.RancherImage+" >/dev/null"); err != nil {
			return time.Time{}, fmt.Errorf("%s: docker pull %s: %w", n.Name, lab.RancherImage, err)
		}
	}
	if err := c.manualDump(ctx, "manual-pre-resize.sql"); err != nil {
		return time.Time{}, err
	}
	script, err := c.manualCreateScript(ctx, len(all))
	if err != nil {
		return time.Time{}, err
	}
	for _, n := range all {
		if _, err := c.ssh(ctx, script, n.Name, "mkdir -p "+path.Dir(layout.Script)+" && cat > "+layout.Script); err != nil {
			return time.Time{}, fmt.Errorf("%s: copy rancher-ha.sh: %w", n.Name, err)
		}
	}
	// The pool last: haproxy takes a new server for up until its checks
	// fail, and its source balancing may send a client there.
	if err := c.manualPool(ctx, olds[len(olds)-1], news); err != nil {
		return time.Time{}, err
	}
	stopped, err := c.manualStop(ctx, olds)
	if err != nil {
		return stopped, err
	}
	return stopped, c.manualStart(ctx, all, lab.RancherImage)
}

// manualGrants creates the application user at the new nodes' addresses
// with the mysql client, the statements on its standard input (the
// password never on a command line).
func (c *config) manualGrants(ctx context.Context, news []lab.Host) error {
	pw, err := os.ReadFile(c.lab.Path("secrets/db-password"))
	if err != nil {
		return err
	}
	opt, err := c.adminOptions()
	if err != nil {
		return err
	}
	defer os.Remove(opt)
	quoted := "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(strings.TrimSpace(string(pw))) + "'"
	var stmts strings.Builder
	for _, n := range news {
		fmt.Fprintf(&stmts, "CREATE USER IF NOT EXISTS 'cattle'@'%s' IDENTIFIED BY %s;\nGRANT ALL ON cattle.* TO 'cattle'@'%s';\n", n.IP, quoted, n.IP)
	}
	if _, err := command(ctx, []byte(stmts.String()), "mysql", "--defaults-extra-file="+opt); err != nil {
		return fmt.Errorf("grants for the new nodes: %w", err)
	}
	return nil
}

// serverLine is a server line of a haproxy backend: indent, name, address,
// port and the rest.
var serverLine = regexp.MustCompile(`^(\s+)server (\S+) ([^\s:]+):(\d+)(.*)$`)

// addServers is haproxy.cfg with, after each server line of the node
// after, the same line for every new node.
func addServers(cfg string, after lab.Host, news []lab.Host) (string, int) {
	var out []string
	added := 0
	for _, line := range strings.Split(cfg, "\n") {
		out = append(out, line)
		m := serverLine.FindStringSubmatch(line)
		if m == nil || m[2] != after.Name {
			continue
		}
		for _, n := range news {
			out = append(out, m[1]+"server "+n.Name+" "+n.IP+":"+m[4]+m[5])
			added++
		}
	}
	return strings.Join(out, "\n"), added
}

// manualPool adds the new nodes to every backend of the load balancer as
// an operator edits haproxy.cfg: next to the last node's lines, then
// haproxy -c, and the reload.
func (c *config) manualPool(ctx context.Context, last lab.Host, news []lab.Host) error {
	const cfgPath = "/etc/haproxy/haproxy.cfg"
	cur, err := c.ssh(ctx, nil, "lb", "cat "+cfgPath)
	if err != nil {
		return fmt.Errorf("lb: read %s: %w", cfgPath, err)
	}
	next, added := addServers(string(cur), last, news)
	if added == 0 {
		return fmt.Errorf("lb: %s has no server line for %s", cfgPath, last.Name)
	}
	if _, err := c.ssh(ctx, []byte(next), "lb", "cat > "+cfgPath+".new && haproxy -c -q -f "+cfgPath+".new && mv "+cfgPath+".new "+cfgPath+
		" && { service haproxy reload || service haproxy start; } >/dev/null"); err != nil {
		return fmt.Errorf("lb: install the pool of %d nodes: %w", len(news)+1, err)
	}
	return nil
}

// manualCreateScript asks the running cluster, through the load balancer,
// for a rancher-ha.sh of size nodes (rancher-1.0-ha.md section 9: any
// running cattle serves createscript), with the registration URL and
// every other input at its default.
func (c *config) manualCreateScript(ctx context.Context, size int) ([]byte, error) {
	client, err := c.lbClient(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	base := "https://" + c.lab.IP("lb")
	get, err := httpDo(ctx, client, http.MethodGet, base+"/v1/haconfigs", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []struct {
			Actions map[string]string `json:"actions"`
		} `json:"data"`
	}
	if err := json.Unmarshal(get, &list); err != nil || len(list.Data) == 0 || list.Data[0].Actions["createscript"] == "" {
		return nil, fmt.Errorf("GET /v1/haconfigs: no createscript action in %.200q (%v)", get, err)
	}
	in, _ := json.Marshal(map[string]any{"clusterSize": size, "hostRegistrationUrl": base})
	script, err := httpDo(ctx, client, http.MethodPost, list.Data[0].Actions["createscript"], in)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(script, []byte("#!")) {
		return nil, fmt.Errorf("createscript answered %d bytes that are no script", len(script))
	}
	return script, nil
}

// httpDo sends a request (a JSON body if any) and returns the body of a
// 2xx answer.
func httpDo(ctx context.Context, client *http.Client, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return b, nil
}

// checkResized checks that the three nodes and the two spares run
// rancher-ha on lab.RancherImage from a script of cluster size 5.
func (c *config) checkResized(ctx context.Context) error {
	want := "export CATTLE_HA_CLUSTER_SIZE=" + strconv.Itoa(5)
	for _, n := range append(c.lab.ByRole(lab.RoleNode), c.lab.ByRole(lab.RoleSpare)[:2]...) {
		out, err := c.lab.Exec(ctx, n.Name, nil, "sh", "-c", "docker inspect -f '{{.State.Running}} {{.Config.Image}}' "+layout.HA+"; grep '^export CATTLE_HA_CLUSTER_SIZE=' /var/lib/rancher/etc/server.conf")
		if got := strings.Fields(strings.TrimSpace(string(out))); err != nil || len(got) != 4 || got[0] != "true" || got[1] != lab.RancherImage || got[2]+" "+got[3] != want {
			return fmt.Errorf("%s after the resize: %q (%v), want rancher-ha running %s and %q", n.Name, strings.TrimSpace(string(out)), err, lab.RancherImage, want)
		}
	}
	return nil
}
