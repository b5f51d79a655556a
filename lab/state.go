package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Lab describes a lab that is up. It is what lab/out/lab.json holds; all
// paths in it are absolute.
type Lab struct {
	Dir            string `json:"dir"`
	Network        string `json:"network"`
	Subnet         string `json:"subnet"`
	Gateway        string `json:"gateway"`
	HostImage      string `json:"hostImage"`
	Registry       string `json:"registry"`       // from this machine: 127.0.0.1:5000
	RegistryMirror string `json:"registryMirror"` // from the nodes: http://10.213.0.2:5000
	RancherImage   string `json:"rancherImage"`
	Manifest       string `json:"manifest"` // lab/out/cluster.yaml
	SSH            SSH    `json:"ssh"`
	DB             DB     `json:"db"`
	Hosts          []Host `json:"hosts"`
	// IPs repeats the hosts' addresses by name, for scripts reading lab.json.
	IPs map[string]string `json:"ips"`
}

// SSH is how to log in to the lab's hosts.
type SSH struct {
	User           string `json:"user"`
	Port           int    `json:"port"`
	IdentityFile   string `json:"identityFile"`
	KnownHostsFile string `json:"knownHostsFile"`
}

// DB is the lab's MariaDB server. Passwords are only ever in files.
type DB struct {
	Host              string `json:"host"`
	Port              int    `json:"port"`
	AdminUser         string `json:"adminUser"`
	AdminPasswordFile string `json:"adminPasswordFile"`
	PasswordFile      string `json:"passwordFile"` // for the cattle user haplan creates
}

// Files under the output directory.
const (
	fileLabJSON      = "lab.json"
	fileManifest     = "cluster.yaml"
	fileKey          = "ssh/id_ed25519"
	fileKnownHosts   = "ssh/known_hosts"
	fileAdminSecret  = "secrets/db-admin-password"
	fileDBPassSecret = "secrets/db-password"
)

// DefaultDir is lab/out of the haplan module that holds the working
// directory, found by walking up to its go.mod. Tests in any package of
// the module can call Load(DefaultDir()).
func DefaultDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "lab", "out"), nil
}

// RepoRoot walks up from the working directory to the go.mod of the
// haplan module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/haplan/haplan\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repo root: no go.mod of github.com/haplan/haplan above the working directory")
		}
		dir = parent
	}
}

// Load reads the lab.json that Up wrote into dir.
func Load(dir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileLabJSON))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load lab from %s: %w", dir, ErrNotUp)
	}
	if err != nil {
		return nil, fmt.Errorf("load lab: %w", err)
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("load lab from %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load lab: %w", err)
	}
	l.Dir = abs
	return &l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab.json: %w", err)
	}
	return writeFileAtomic(l.Path(fileLabJSON), append(b, '\n'), 0o644)
}

// Path is rel inside the lab's output directory.
func (l *Lab) Path(rel string) string { return filepath.Join(l.Dir, rel) }

// Host returns the host called name.
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("%q: %w", name, ErrUnknownHost)
}

// IP returns the address of the host called name, or "" if there is none.
func (l *Lab) IP(name string) string {
	h, err := l.Host(name)
	if err != nil {
		return ""
	}
	return h.IP
}

// ByRole returns the hosts of a role, in layout order.
func (l *Lab) ByRole(r Role) []Host {
	var hs []Host
	for _, h := range l.Hosts {
		if h.Role == r {
			hs = append(hs, h)
		}
	}
	return hs
}

// AdminConfig is the go-sql-driver/mysql configuration of the database
// admin (root) from this machine, with a 5 s connect timeout. It holds the
// password: never print it.
func (l *Lab) AdminConfig() (*mysql.Config, error) {
	pw, err := readSecret(l.DB.AdminPasswordFile)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = l.DB.AdminUser, pw
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(l.DB.Host, strconv.Itoa(l.DB.Port))
	cfg.Timeout = 5 * time.Second
	return cfg, nil
}

// AdminDSN is AdminConfig as a DSN. It holds the password: never print it.
func (l *Lab) AdminDSN() (string, error) {
	cfg, err := l.AdminConfig()
	if err != nil {
		return "", err
	}
	return cfg.FormatDSN(), nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFileAtomic writes via a temporary file and a rename, so readers
// never see half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
