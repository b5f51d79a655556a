package standin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadNodeConfig(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	enc, err := Encrypt(key, "db-pw")
	if err != nil {
		t.Fatal(err)
	}
	serverConf := func(size int) string {
		return "export CATTLE_HA_CLUSTER_SIZE=" + map[int]string{1: "1", 3: "3"}[size] + "\n" +
			"export CATTLE_HA_HOST_REGISTRATION_URL=https://lb\nexport CATTLE_DB_CATTLE_MYSQL_HOST=10.213.0.3\n" +
			"export CATTLE_DB_CATTLE_PASSWORD=" + enc + "\nexport CATTLE_HA_PORT_HTTPS=8443\n"
	}
	tests := []struct {
		name      string
		size      int
		agentConf string
		env       map[string]string
		routeIP   bool
		key       []byte
		wantIP    string
		wantErr   error
	}{
		{name: "agent.conf cluster IP", size: 3, agentConf: "export CATTLE_HA_CLUSTER_IP=10.213.1.2\nexport CATTLE_AGENT_IP=1.1.1.1\n", key: key, wantIP: "10.213.1.2"},
		{name: "agent IP", size: 3, agentConf: "export CATTLE_AGENT_IP=10.213.1.3\n", key: key, wantIP: "10.213.1.3"},
		{name: "env cluster IP", size: 3, env: map[string]string{"CATTLE_HA_CLUSTER_IP": "10.213.1.1"}, key: key, wantIP: "10.213.1.1"},
		{name: "conf beats env", size: 3, agentConf: "export CATTLE_HA_CLUSTER_IP=10.213.1.2\n", env: map[string]string{"CATTLE_HA_CLUSTER_IP": "10.213.1.1"}, key: key, wantIP: "10.213.1.2"},
		{name: "size one falls back to loopback", size: 1, key: key, wantIP: "127.0.0.1"},
		{name: "size three needs an IP", size: 3, key: key, wantErr: ErrNoClusterIP},
		{name: "wrong key", size: 3, agentConf: "export CATTLE_HA_CLUSTER_IP=10.213.1.2\n", key: other, wantErr: ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etc := t.TempDir()
			if err := os.MkdirAll(filepath.Join(etc, "server"), 0o700); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(etc, "server.conf"), []byte(serverConf(tt.size)))
			write(t, filepath.Join(etc, "server", "encryption.key"), []byte(EncodeKey(tt.key)+"\n"))
			if tt.agentConf != "" {
				write(t, filepath.Join(etc, "agent.conf"), []byte(tt.agentConf))
			}
			c, err := loadNodeConfig(HAOptions{EtcDir: etc, RouteFile: "/nonexistent", Getenv: func(k string) string { return tt.env[k] }})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "db-pw") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{c.clusterIP, c.size, c.db.Password, c.db.Port, c.httpPort, c.httpsPort, c.url}
			want := []any{tt.wantIP, tt.size, "db-pw", 3306, 80, 8443, "https://lb"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[ip size password port http https url] (-want +got):\n%s", diff)
			}
		})
	}
}
