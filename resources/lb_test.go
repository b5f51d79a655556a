package resources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The configuration haplan writes to the load balancer, as text: TCP on 80
// and 443 to every node, each node health-checked on its own API (18080,
// GET /ping expecting pong), so a node only gets traffic once it serves
// (docs/troubleshooting.md: a check on 80/443 would keep every node out
// during bring-up). Set -update to rewrite testdata/haproxy.cfg.
func TestHAProxyConfig(t *testing.T) {
	c := testCluster()
	s := &lbConfig{base: base{addr: "lb.config", env: testEnv(c)}}
	got := string(s.render())
	golden := filepath.Join("testdata", "haproxy.cfg")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("haproxy.cfg (-want +got):\n%s", diff)
	}
	for _, port := range []string{"80", "443"} {
		if !strings.Contains(got, "frontend rancher_"+port+"\n    bind *:"+port+"\n") {
			t.Errorf("no frontend on %s", port)
		}
		for _, n := range c.Nodes {
			line := "    server " + n.Name + " " + n.Address + ":" + port + " check port 18080 inter 2s fastinter 500ms downinter 500ms fall 3 rise 2\n"
			if !strings.Contains(got, line) {
				t.Errorf("backend %s lacks %q", port, line)
			}
		}
	}
	if strings.Count(got, "option httpchk GET /ping\n    http-check expect string pong\n") != 2 {
		t.Error("the backends are not health-checked with GET /ping expecting pong")
	}
	if string(s.render()) != got {
		t.Error("render is not deterministic: its digest would flap")
	}
}
