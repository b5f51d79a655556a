//go:build lab

package dockerapi

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/haplan/haplan/transport"
)

// cliOnly hides the SSH connection behind a runner: a Reader over it can
// only use the docker CLI.
type cliOnly struct{ transport.Runner }

// TestLabReaderAgreesWithCLI reads rs1's Docker Engine three ways, over the
// Engine API as root, with the docker CLI as root, and as a non-root user
// with sudo (the API socket is out of that user's reach, so the Reader falls
// back to `sudo docker`), and wants the same answers each time.
func TestLabReaderAgreesWithCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := filepath.Abs("../lab/out")
	if err != nil {
		t.Fatal(err)
	}
	cfg := transport.Config{
		Host: "rs1", Address: "10.213.1.1", User: "root",
		IdentityFile:   filepath.Join(out, "ssh", "id_ed25519"),
		KnownHostsFile: filepath.Join(out, "ssh", "known_hosts"),
		ConnectTimeout: 10 * time.Second,
	}
	p := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { p.Close() })
	root, err := p.Client(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sh := func(line string) string {
		t.Helper()
		res, err := root.Run(ctx, transport.Cmd{Line: line, Mutates: true})
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return string(res.Stdout)
	}
	// A running container publishing a port, a stopped one, and a user
	// that reaches Docker only through sudo.
	const image = "rancher/server:v1.0.1"
	sh("docker pull -q " + image + " >/dev/null")
	sh(`docker rm -f haplan-dockerapi-run haplan-dockerapi-created >/dev/null 2>&1; ` +
		// Pointed at a closed port, the server waits for its database and
		// keeps running.
		`docker run -d --name haplan-dockerapi-run -p 18999:8080 -e CATTLE_DB_CATTLE_MYSQL_HOST=127.0.0.1 -e CATTLE_DB_CATTLE_MYSQL_PORT=1 ` + image + ` >/dev/null && ` +
		`docker create --name haplan-dockerapi-created ` + image + ` >/dev/null`)
	sh(`id dockerapi >/dev/null 2>&1 || useradd -m -s /bin/sh dockerapi
mkdir -p /home/dockerapi/.ssh && cp /root/.ssh/authorized_keys /home/dockerapi/.ssh/authorized_keys
chown -R dockerapi:dockerapi /home/dockerapi/.ssh && chmod 700 /home/dockerapi/.ssh && chmod 600 /home/dockerapi/.ssh/authorized_keys
echo 'dockerapi ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dockerapi && chmod 440 /etc/sudoers.d/dockerapi`)
	t.Cleanup(func() {
		_, _ = root.Run(context.Background(), transport.Cmd{Mutates: true,
			Line: "docker rm -f haplan-dockerapi-run haplan-dockerapi-created >/dev/null 2>&1; rm -f /etc/sudoers.d/dockerapi; userdel -r dockerapi >/dev/null 2>&1; true"})
	})
	sudoCfg := cfg
	sudoCfg.User, sudoCfg.Sudo = "dockerapi", true
	sudo, err := p.Client(ctx, sudoCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sudo.DialContext(ctx, "unix", Socket); err == nil {
		t.Fatal("the non-root user opened the docker socket over SSH: the sudo case would not test the CLI fallback")
	}

	type reading struct {
		Version          EngineVersion
		ImageID, NoImage string
		Run, Created, No Container
		Listed           []Container
	}
	read := func(d *Reader) reading {
		t.Helper()
		var r reading
		var err error
		if r.Version, err = d.Version(ctx); err != nil {
			t.Fatal(err)
		}
		if r.ImageID, err = d.ImageID(ctx, image); err != nil {
			t.Fatal(err)
		}
		if r.NoImage, err = d.ImageID(ctx, "haplan/no-such-image:1"); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*Container{"haplan-dockerapi-run": &r.Run, "haplan-dockerapi-created": &r.Created, "haplan-no-such": &r.No} {
			if *c, err = d.Inspect(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		list, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if c.Name == "haplan-dockerapi-run" {
				r.Listed = append(r.Listed, c)
			}
			if c.Name == "haplan-dockerapi-created" {
				t.Errorf("List shows the container that never started")
			}
		}
		return r
	}
	api := New(transport.ReadOnly(root))
	if api.dial == nil {
		t.Fatal("a read-only runner over an SSH client gave no dialer")
	}
	viaAPI := read(api)
	viaCLI := read(New(cliOnly{transport.ReadOnly(root)}))
	viaSudo := read(New(transport.ReadOnly(sudo)))

	if viaAPI.Version.Version == "" || viaAPI.Version.MinAPIVersion == "" || viaAPI.ImageID == "" || viaAPI.NoImage != "" {
		t.Errorf("API reading: %+v", viaAPI)
	}
	if viaAPI.Run.Status != "running" || viaAPI.Run.Image != image || viaAPI.Created.Status != "created" || viaAPI.No.Status != "absent" {
		t.Errorf("API inspect: %+v %+v %+v", viaAPI.Run, viaAPI.Created, viaAPI.No)
	}
	if len(viaAPI.Listed) != 1 || !slices.Contains(viaAPI.Listed[0].Ports, 18999) {
		t.Errorf("API list: %+v", viaAPI.Listed)
	}
	// List's ports need not come in the same order both ways.
	for _, r := range []*reading{&viaAPI, &viaCLI, &viaSudo} {
		for _, c := range r.Listed {
			slices.Sort(c.Ports)
		}
	}
	if d := cmp.Diff(viaAPI, viaCLI); d != "" {
		t.Errorf("API and CLI disagree (-api +cli):\n%s", d)
	}
	if d := cmp.Diff(viaAPI, viaSudo); d != "" {
		t.Errorf("API and sudo CLI disagree (-api +sudo):\n%s", d)
	}
}
