package standin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runScript renders a script, points its /var/lib/rancher paths into a temp
// dir, and runs it with sh and a fake docker that records its arguments.
func runScript(t *testing.T, d ScriptData, args ...string) (root string, dockerLog string) {
	t.Helper()
	script, err := RenderScript(d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "docker.log")
	fake := "#!/bin/sh\necho \"$*\" >> " + logFile + "\necho fakeid\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	local := bytes.ReplaceAll(script, []byte("/var/lib/rancher"), []byte(root+"/var/lib/rancher"))
	path := filepath.Join(dir, "rancher-ha.sh")
	if err := os.WriteFile(path, local, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	cmd := exec.Command("sh", append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh rancher-ha.sh: %v\n%s", err, out)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// The docker arguments were rewritten with the paths: map them back.
	return root, strings.ReplaceAll(string(b), root, "")
}

func TestScriptRuns(t *testing.T) {
	key := mustKey(t)
	enc, err := Encrypt(key, "s3cret pass'word")
	if err != nil {
		t.Fatal(err)
	}
	base := ScriptData{
		DB:                DBConfig{Host: "10.213.0.3", Port: 3306, Name: "cattle", User: "cattle"},
		EncryptedPassword: enc,
		EncryptionKey:     EncodeKey(key),
	}
	base.Input = DefaultScriptInput()
	base.Input.HostRegistrationURL = "https://10.213.0.10"
	withCerts := base
	withCerts.Input.Cert, withCerts.Input.Key, withCerts.Input.CertChain = "-----CERT-----\n", "-----KEY-----", "-----CHAIN-----\r\n"

	tests := []struct {
		name      string
		data      ScriptData
		args      []string
		wantImage string
		wantSSL   map[string]string
	}{
		{name: "no certs, image given", data: base, args: []string{"rancher/server:v1.0.1"}, wantImage: "rancher/server:v1.0.1", wantSSL: map[string]string{}},
		{name: "no image defaults to latest", data: base, wantImage: "rancher/server", wantSSL: map[string]string{}},
		{name: "certs", data: withCerts, args: []string{"rancher/server:v1.0.1"}, wantImage: "rancher/server:v1.0.1",
			wantSSL: map[string]string{"server-cert.pem": "-----CERT-----\n", "server-key.pem": "-----KEY-----\n", "ca.crt": "-----CHAIN-----\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, docker := runScript(t, tt.data, tt.args...)
			etc := filepath.Join(root, "var/lib/rancher/etc")
			wantDocker := "rm -fv rancher-ha\nrun --restart=always -d -v /var/run/docker.sock:/var/run/docker.sock --name rancher-ha --net host -v /var/lib/rancher/etc:/var/lib/rancher/etc " + tt.wantImage + " ha\n"
			if diff := cmp.Diff(wantDocker, docker); diff != "" {
				t.Errorf("docker calls (-want +got):\n%s", diff)
			}
			conf := map[string]string{}
			f, err := os.Open(filepath.Join(etc, "server.conf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := ParseExports(f, conf); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"CATTLE_HA_CLUSTER_SIZE": "3", "CATTLE_HA_HOST_REGISTRATION_URL": tt.data.Input.HostRegistrationURL,
				"CATTLE_HA_CONTAINER_PREFIX": "rancher-ha-", "CATTLE_DB_CATTLE_MYSQL_HOST": "10.213.0.3",
				"CATTLE_DB_CATTLE_MYSQL_PORT": "3306", "CATTLE_DB_CATTLE_MYSQL_NAME": "cattle",
				"CATTLE_DB_CATTLE_USERNAME": "cattle", "CATTLE_DB_CATTLE_PASSWORD": enc,
				"CATTLE_HA_PORT_REDIS": "6379", "CATTLE_HA_PORT_SWARM": "2376", "CATTLE_HA_PORT_HTTP": "80",
				"CATTLE_HA_PORT_HTTPS": "443", "CATTLE_HA_PORT_PP_HTTP": "81", "CATTLE_HA_PORT_PP_HTTPS": "444",
				"CATTLE_HA_PORT_ZK_CLIENT": "2181", "CATTLE_HA_PORT_ZK_QUORUM": "2888", "CATTLE_HA_PORT_ZK_LEADER": "3888",
			}
			if diff := cmp.Diff(want, conf); diff != "" {
				t.Errorf("server.conf (-want +got):\n%s", diff)
			}
			raw, _ := os.ReadFile(filepath.Join(etc, "server.conf"))
			if !strings.Contains(string(raw), "\n# export CATTLE_HA_ENABLED=true\n") {
				t.Error("server.conf lacks the commented CATTLE_HA_ENABLED line")
			}
			keyText, err := os.ReadFile(filepath.Join(etc, "server/encryption.key"))
			if err != nil {
				t.Fatal(err)
			}
			k, err := DecodeKey(string(keyText))
			if err != nil {
				t.Fatal(err)
			}
			if pw, err := Decrypt(k, conf["CATTLE_DB_CATTLE_PASSWORD"]); err != nil || pw != "s3cret pass'word" {
				t.Errorf("password from files = %q, %v", pw, err)
			}
			gotSSL := map[string]string{}
			entries, _ := os.ReadDir(filepath.Join(etc, "ssl"))
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(etc, "ssl", e.Name()))
				gotSSL[e.Name()] = string(b)
			}
			if diff := cmp.Diff(tt.wantSSL, gotSSL); diff != "" {
				t.Errorf("ssl files (-want +got):\n%s", diff)
			}
			st, err := os.Stat(filepath.Join(etc, "server.conf"))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("server.conf mode = %v, %v; want 0600 (umask 077)", st.Mode().Perm(), err)
			}
		})
	}
}

func TestScriptKeepsOldKey(t *testing.T) {
	d := ScriptData{DB: DBConfig{Host: "db", Port: 3306, Name: "cattle", User: "cattle"}, EncryptedPassword: "00:00", EncryptionKey: "NEWKEY"}
	d.Input = DefaultScriptInput()
	d.Input.HostRegistrationURL = "https://lb"
	script, err := RenderScript(d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "var/lib/rancher/etc/server")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keyDir, "encryption.key"), []byte("OLDKEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Stop before exec: only the file-writing part matters here.
	local := strings.ReplaceAll(string(script), "/var/lib/rancher", dir+"/var/lib/rancher")
	local = strings.ReplaceAll(local, "exec "+dir+"/var/lib/rancher/bin/rancher-ha-start.sh $IMAGE", "exit 0")
	if out, err := exec.Command("sh", "-c", local).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(keyDir, e.Name()))
		name := e.Name()
		if strings.HasPrefix(name, "encryption.key.") {
			name = "encryption.key.<epoch>"
		}
		got[name] = string(b)
	}
	want := map[string]string{"encryption.key": "NEWKEY\n", "encryption.key.<epoch>": "OLDKEY\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("key files (-want +got):\n%s", diff)
	}
}

// cattle v0.159.7 script.ftl lines 14-24 write the DB values into an
// unquoted here-document (<< EOF) without quoting them, and server/bin/ha
// sources server.conf: the node's shell expands a $ while writing, and an
// unquoted blank ends the value. The stand-in breaks the same way, so
// haplan has to refuse such values before it generates a script.
func TestScriptWritesValuesUnquoted(t *testing.T) {
	key := mustKey(t)
	enc, err := Encrypt(key, "pw")
	if err != nil {
		t.Fatal(err)
	}
	d := ScriptData{DB: DBConfig{Host: "10.213.0.3", Port: 3306, Name: "my db", User: "ca$HOME"},
		EncryptedPassword: enc, EncryptionKey: EncodeKey(key)}
	d.Input = DefaultScriptInput()
	d.Input.HostRegistrationURL = "https://10.213.0.10"
	script, err := RenderScript(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"cat > /var/lib/rancher/etc/server.conf << EOF\n", "export CATTLE_DB_CATTLE_MYSQL_NAME=my db\n",
		"export CATTLE_DB_CATTLE_USERNAME=ca$HOME\n", "cat > /var/lib/rancher/bin/rancher-ha-start.sh << \"EOF\"\n"} {
		if !strings.Contains(string(script), line) {
			t.Errorf("script lacks %q", line)
		}
	}
	root, _ := runScript(t, d, "rancher/server:v1.0.1")
	f, err := os.Open(filepath.Join(root, "var/lib/rancher/etc/server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conf := map[string]string{}
	if err := ParseExports(f, conf); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	if got, want := conf["CATTLE_DB_CATTLE_USERNAME"], "ca"+home; got != want {
		t.Errorf("user = %q, want %q ($HOME expanded by the node's shell)", got, want)
	}
	if got := conf["CATTLE_DB_CATTLE_MYSQL_NAME"]; got != "my" {
		t.Errorf("database name = %q, want %q (cut at the blank)", got, "my")
	}
}
