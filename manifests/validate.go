package manifests

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/haplan/haplan/diag"
	"github.com/haplan/haplan/layout"
)

// validator checks a decoded Cluster and reports problems by value path;
// the loader turns paths into source ranges.
type validator struct {
	dir       string // manifest directory: files below it are shown relative to it
	lookupEnv func(string) (string, bool)
	// secretsOptional: a secret that is not there (unset variable,
	// missing file) is a warning (validate in CI, without production
	// secrets).
	secretsOptional bool
	seen            map[diag.Diagnostic]bool
	// written reports whether the manifest set the value at path.
	written func(path string) bool
	// where names the source position of a path, "file:line:col".
	where func(path string) string
	diags diag.Diagnostics
}

func (v *validator) errorf(path, detail, format string, args ...any) {
	v.add(diag.Diagnostic{Severity: diag.Error, Summary: fmt.Sprintf(format, args...), Detail: detail, Path: path})
}

func (v *validator) warnf(path, detail, format string, args ...any) {
	v.add(diag.Diagnostic{Severity: diag.Warning, Summary: fmt.Sprintf(format, args...), Detail: detail, Path: path})
}

// add skips exact repeats (a default shared by many machines), in
// constant time: thousands of hosts may each report one.
func (v *validator) add(d diag.Diagnostic) {
	if v.seen == nil {
		v.seen = map[diag.Diagnostic]bool{}
	}
	if v.seen[d] {
		return
	}
	v.seen[d] = true
	v.diags = append(v.diags, d)
}

// Names end up in step addresses (image.pull[rs1]) and file names.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`) })

var dnsLabelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`) })

var hostLabelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`) })

// validHostname accepts RFC 1123 host names (letters, digits, hyphens,
// dot-separated labels).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !hostLabelRE().MatchString(l) {
			return false
		}
	}
	// All-numeric dotted names are mistyped IPs, not host names.
	return net.ParseIP(s) == nil && strings.Trim(s, "0123456789.") != ""
}

func validAddress(s string) bool { return net.ParseIP(s) != nil || validHostname(s) }

func (v *validator) address(path, s string, required bool) {
	switch {
	case s == "" && required:
		v.errorf(path, "", "%s is required", path)
	case s != "" && !validAddress(s):
		v.errorf(path, "Use an IP address or a host name.", "%s: %q is not an IP address or host name", path, s)
	}
}

func (v *validator) port(path string, p int) {
	if p < 1 || p > 65535 {
		v.errorf(path, "", "%s: port %d is out of range 1-65535", path, p)
	}
}

// validate runs every check. hostPaths[i] is the value path of c.Hosts[i]
// ("hosts[2]" or "hostsFile[0]").
func (v *validator) validate(c *Cluster, hostPaths []string) {
	switch {
	case c.Name == "":
		v.errorf("name", "", "name is required")
	case !dnsLabelRE().MatchString(c.Name):
		v.errorf("name", "Use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit.",
			"name %q is not a DNS label", c.Name)
	}
	v.rancher(c)
	v.database(c)
	v.loadBalancer(c)
	v.nodes(c)
	v.hosts(c, hostPaths)
}

// minTimeout is the shortest timeout a manifest may set: below a second
// nothing remote can answer, and the error would blame the machine.
const minTimeout = time.Second

func (v *validator) rancher(c *Cluster) {
	r := c.Rancher
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"bootstrap", r.Timeouts.Bootstrap}, {"clusterFormation", r.Timeouts.ClusterFormation}, {"ssh", r.Timeouts.SSH},
		{"command", r.Timeouts.Command}, {"pull", r.Timeouts.Pull}, {"register", r.Timeouts.Register}} {
		if t.d < minTimeout {
			v.errorf("rancher.timeouts."+t.key, "Timeouts are for remote work: write seconds or minutes, e.g. \"30s\" or \"10m\".",
				"rancher.timeouts.%s %s is shorter than %s", t.key, t.d, minTimeout)
		}
	}
	if !validImageRef(r.Image) {
		v.errorf("rancher.image", imageRefHelp, "rancher.image %q is not an image reference", r.Image)
	} else if !imageHasTag(r.Image) {
		v.errorf("rancher.image", fmt.Sprintf("Without a tag the generated script pulls :latest; write e.g. %q.", DefaultImage),
			"rancher.image %q has no tag", r.Image)
	} else if ver, ok := ServerVersion(r.Image); !ok {
		v.warnf("rancher.image", "haplan drives the HA of Rancher 1.0.x and 1.1.x (rancher-ha.sh); with a tag that names a release it also refuses a downgrade.",
			"rancher.image %q does not name a release (v1.0.x or v1.1.x)", r.Image)
	} else if !HAScriptRelease(ver) {
		v.errorf("rancher.image", "From Rancher 1.2 on, HA is another design (no rancher-ha.sh, --advertise-address, port 9345): going there is a migration, not an upgrade haplan can do. Use a 1.0.x or 1.1.x release.",
			"rancher.image %q is Rancher %s", r.Image, ver)
	}
	for _, f := range []struct{ path, img, def string }{
		{"rancher.agentImage", r.AgentImage, DefaultAgentImage},
		{"rancher.agentInstanceImage", r.AgentInstanceImage, DefaultAgentInstanceImage},
	} {
		if !validImageRef(f.img) {
			v.errorf(f.path, imageRefHelp, "%s %q is not an image reference", f.path, f.img)
		} else if !imageHasTag(f.img) {
			v.errorf(f.path, fmt.Sprintf("Name the version that goes with the server image, e.g. %q.", f.def), "%s %q has no tag", f.path, f.img)
		}
	}
	v.registrationURL(c)
	if reg := r.ImageRegistry; reg != "" && !validRegistry(reg) {
		v.errorf("rancher.imageRegistry", `Write the registry's host, an optional port and an optional path, without a scheme, e.g. "registry.example.com:5000/mirror".`,
			"rancher.imageRegistry %q is not a registry name", reg)
	} else if reg != "" {
		// Each image is pulled as REGISTRY/IMAGE and tagged IMAGE: that
		// needs a plain name:tag.
		for _, f := range []struct{ path, img string }{
			{"rancher.image", r.Image}, {"rancher.agentImage", r.AgentImage}, {"rancher.agentInstanceImage", r.AgentInstanceImage},
		} {
			if strings.Contains(f.img, "@") || namesRegistry(f.img) {
				v.errorf(f.path, "With rancher.imageRegistry, write the image as name:tag (e.g. "+DefaultImage+"): haplan pulls it from the registry and tags it with that name.",
					"%s %q names a registry or a digest, which rancher.imageRegistry cannot be combined with", f.path, f.img)
			}
		}
	}
	if r.BootstrapNode != "" {
		if _, ok := c.Node(r.BootstrapNode); !ok {
			var names []string
			for _, n := range c.Nodes {
				names = append(names, n.Name)
			}
			detail := "Nodes: " + strings.Join(names, ", ") + "."
			if s := suggest(r.BootstrapNode, names); s != "" {
				detail = fmt.Sprintf("Did you mean %q?", s)
			}
			v.errorf("rancher.bootstrapNode", detail, "rancher.bootstrapNode %q is not a node", r.BootstrapNode)
		}
	}
	if ct := r.Certificate; ct != nil {
		parts := []struct {
			key string
			s   Secret
		}{{"cert", ct.Cert}, {"key", ct.Key}, {"chain", ct.Chain}}
		for _, p := range parts {
			path := "rancher.certificate." + p.key
			if p.s.IsZero() {
				detail := ""
				if p.key == "chain" {
					detail = `Without the CA chain (ca.crt) the nodes loop on "Can not launch agent right now"; give the chain, or omit the whole certificate block for a self-signed CA.`
				}
				v.errorf(path, detail, "%s is required with your own certificate", path)
				continue
			}
			v.secret(path, p.s)
		}
	}
	v.certificate(c)
	if k := r.APIKey; k != nil {
		for _, p := range []struct {
			key string
			s   Secret
		}{{"accessKey", k.AccessKey}, {"secretKey", k.SecretKey}} {
			path := "rancher.apiKey." + p.key
			if p.s.IsZero() {
				v.errorf(path, "An API key is a pair: the access key (public value) and the secret key (secret value) of an account API key of an admin (API -> Keys -> Add Account API Key).",
					"%s is required with rancher.apiKey", path)
				continue
			}
			v.secret(path, p.s)
		}
	}
}

// imageHasTag reports whether a docker image reference names a tag or a
// digest ("registry:5000/rancher/server" has neither).
// reservedName explains why a machine cannot be named "lb".
const reservedName = "haplan names the load balancer's machine \"lb\" in plans, step hosts and checks; pick another name."

const imageRefHelp = `Write [registry[:port]/]name[:tag][@digest], e.g. "rancher/server:v1.0.1" (Docker's reference grammar: lower-case path components, a tag of letters, digits, '_', '.' and '-').`

// imageRefRE is Docker's reference grammar (distribution/reference
// regexp.go): an optional domain with port, lower-case path components,
// an optional tag and an optional digest.
var imageRefRE = sync.OnceValue(func() *regexp.Regexp {
	const (
		domainComp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain     = `(?:` + domainComp + `(?:\.` + domainComp + `)*` + `(?::[0-9]+)?)`
		pathComp   = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
		name       = `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
		tag        = `[\w][\w.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^` + name + `(?::` + tag + `)?(?:@` + digest + `)?$`)
})

// validImageRef reports a Docker image reference of at most 255
// characters of name.
func validImageRef(img string) bool {
	return len(img) <= 512 && imageRefRE().MatchString(img)
}

func imageHasTag(img string) bool {
	if strings.Contains(img, "@") {
		return true
	}
	last := img[strings.LastIndex(img, "/")+1:]
	i := strings.LastIndex(last, ":")
	return i > 0 && i < len(last)-1
}

// validRegistry accepts "host[:port][/path]" as docker names a registry
// prefix: no scheme, no blanks, no trailing slash, no tag.
func validRegistry(s string) bool {
	if strings.Contains(s, "://") || strings.HasSuffix(s, "/") || strings.ContainsAny(s, " \t@") {
		return false
	}
	host, path, _ := strings.Cut(s, "/")
	if host == "" || strings.Contains(path, ":") {
		return false
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		n, err := strconv.Atoi(p)
		return validAddress(h) && err == nil && n > 0 && n < 65536
	}
	return validAddress(host)
}

// namesRegistry reports whether an image reference starts with a registry
// host, as docker reads it: a first component with a dot or a colon, or
// "localhost".
func namesRegistry(img string) bool {
	first, _, ok := strings.Cut(img, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// scriptSafe reports whether s can go into rancher-ha.sh unquoted: the
// real script writes database name and user as `export X=${value}` inside
// an unquoted here-document and the node sources it (rancher-1.0-ha.md,
// pitfall 19).
func scriptSafe(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (v *validator) registrationURL(c *Cluster) {
	const path = "rancher.hostRegistrationUrl"
	raw := c.Rancher.HostRegistrationURL
	if raw == "" {
		return // defaulted from loadBalancer.address, which is required
	}
	if v.written != nil && !v.written(path) && !validAddress(c.LoadBalancer.Address) {
		return // defaulted from a bad loadBalancer.address, which says so
	}
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		raw = u.Redacted() // a password in the URL is never echoed
	}
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		v.errorf(path, `Write e.g. "https://rancher.example.com".`, "%s %q is not an http(s) URL", path, raw)
	case u.Host == "" || u.Hostname() == "":
		v.errorf(path, `Write e.g. "https://rancher.example.com".`, "%s %q has no host", path, raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.errorf(path, "Rancher appends its own paths; give only scheme, host and port.", "%s %q must not have a path, query or user", path, raw)
	case !validAddress(u.Hostname()):
		v.errorf(path, "", "%s: %q is not an IP address or host name", path, u.Hostname())
	case u.Port() != "":
		// cluster-manager v0.1.4 names the self-signed certificate after
		// u.Host, port included, and the management stack serves 443.
		v.errorf(path, "Rancher v1.0.1 names its certificate after the URL's host and port together (\""+u.Host+"\"), which no client verifies, and its load balancer serves 443 only. Write the URL without a port and have the load balancer listen on 443.",
			"%s %q: a port in the registration URL is not supported", path, raw)
	case strings.Contains(u.Host, "["):
		at := path
		if v.written != nil && !v.written(path) {
			at = "loadBalancer.address" // the URL defaulted from it
		}
		v.errorf(at, "Rancher v1.0.1 puts \""+u.Host+"\" into its certificate as a name, never as an IP address, so TLS cannot verify it. Set rancher.hostRegistrationUrl to https://<a DNS name that resolves to the load balancer>.",
			"%s %q: an IPv6 literal in the registration URL is not supported", path, raw)
	}
}

// secret checks a reference: exactly one of env and file, set or readable
// now. Only the reference is ever named.
func (v *validator) secret(path string, s Secret) {
	switch {
	case s.IsZero():
		v.errorf(path, "Write {env: NAME} or {file: PATH}.", "%s is required", path)
	case s.Env != "" && s.File != "":
		v.errorf(path, "Keep one of them.", "%s sets both env and file", path)
	case s.Env != "":
		val, ok := v.lookupEnv(s.Env)
		if !ok && v.secretsOptional {
			v.warnf(path+".env", "plan and apply need it; haplan validate --strict makes this an error.", "%s: environment variable %s is not set", path, s.Env)
		} else if !ok {
			v.errorf(path+".env", "Export it before running haplan.", "%s: environment variable %s is not set", path, s.Env)
		} else if val == "" {
			v.warnf(path+".env", "", "%s: environment variable %s is empty", path, s.Env)
		}
	default:
		shown := v.shown(s.File)
		fi, err := os.Stat(s.File)
		if errors.Is(err, os.ErrNotExist) && v.secretsOptional {
			v.warnf(path+".file", "plan and apply need it; haplan validate --strict makes this an error.", "%s: %s does not exist", path, shown)
			return
		}
		// The certificate and its chain are public; everything else read
		// through a reference is a secret.
		public := strings.HasSuffix(path, "certificate.cert") || strings.HasSuffix(path, "certificate.chain")
		if err == nil && !public && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			v.warnf(path+".file", fmt.Sprintf("Only its owner should read a secret: chmod 600 %s.", shown), "%s: %s is readable by others (mode %04o)", path, shown, fi.Mode().Perm())
		}
		if err == nil && fi.IsDir() {
			v.errorf(path+".file", "", "%s: %s is a directory", path, shown)
			return
		}
		if err == nil && !fi.Mode().IsRegular() {
			// Opening a FIFO would block the load.
			v.errorf(path+".file", "", "%s: %s is not a regular file", path, shown)
			return
		}
		f, err := os.Open(s.File)
		if err != nil {
			v.errorf(path+".file", "", "%s: cannot read %s: %s", path, shown, errReason(err))
			return
		}
		_ = f.Close()
		if fi.Size() == 0 {
			v.warnf(path+".file", "", "%s: %s is empty", path, shown)
		}
	}
}

// shown is how a resolved path appears in messages: relative to the
// manifest's directory when it lies below it, as the user wrote it.
func (v *validator) shown(p string) string {
	if rel, err := filepath.Rel(v.dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// errReason is the OS's reason without the path it already named.
func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// sshConfig checks one machine's effective SSH settings. A bad value that
// came from the manifest's ssh defaults is reported once, there, not once
// per machine.
func (v *validator) sshConfig(path string, s SSH) {
	at := func(field string) string {
		own := path + "." + field
		if v.written == nil || v.written(own) || !v.written("ssh."+field) {
			return own
		}
		return "ssh." + field
	}
	if s.User == "" {
		p := at("user")
		v.errorf(p, "", "%s must not be empty", p)
	}
	if p := at("port"); s.Port < 1 || s.Port > 65535 {
		v.errorf(p, "", "%s: port %d is out of range 1-65535", p, s.Port)
	}
	if p := at("hostKeyPolicy"); s.HostKeyPolicy != HostKeyStrict && s.HostKeyPolicy != HostKeyAcceptNew {
		v.errorf(p, "Use strict (the default) or accept-new.", "%s %q is not strict or accept-new", p, s.HostKeyPolicy)
	}
	if s.HostKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey)); err != nil {
			p := at("hostKey")
			v.errorf(p, `Paste a line such as "ssh-ed25519 AAAA..." from ssh-keyscan.`, "%s is not a public key", p)
		}
	}
	// Only the files the manifest names: the defaults (~/.ssh/id_ed25519,
	// ~/.ssh/known_hosts) may well not exist where it is validated.
	if s.Explicit&SSHIdentityFile != 0 {
		v.identityFile(at("identityFile"), s.IdentityFile)
	}
	if p := at("knownHostsFile"); v.written != nil && v.written(p) {
		v.knownHostsFile(p, s.KnownHostsFile, s.HostKeyPolicy)
	}
	if s.Bastion != "" {
		hostPort := s.Bastion
		if i := strings.LastIndex(hostPort, "@"); i >= 0 {
			hostPort = hostPort[i+1:]
		}
		host, port := hostPort, ""
		if h, p, err := net.SplitHostPort(hostPort); err == nil {
			host, port = h, p
		}
		n, err := strconv.Atoi(port)
		if !validAddress(host) || (port != "" && (err != nil || n < 1 || n > 65535)) {
			p := at("bastion")
			v.errorf(p, `Write "user@host:port"; user and port are optional.`, "%s %q is not a valid jump host", p, s.Bastion)
		}
	}
}

func (v *validator) database(c *Cluster) {
	d := c.Database
	v.address("database.host", d.Host, true)
	v.port("database.port", d.Port)
	for _, f := range []struct{ path, value string }{{"database.name", d.Name}, {"database.user", d.User}} {
		switch {
		case f.value == "":
			v.errorf(f.path, "", "%s must not be empty", f.path)
		case !scriptSafe(f.value):
			v.errorf(f.path, "rancher-ha.sh writes it unquoted into server.conf (cattle's script.ftl), so a space, $, quote or backtick breaks every node; use letters, digits, _, - and . only.",
				"%s %q holds characters the generated script cannot carry", f.path, f.value)
		}
	}
	v.secret("database.password", d.Password)
	if d.Admin.User == "" {
		v.errorf("database.admin.user", "The admin account creates the database, the user and the grants.", "database.admin.user is required")
	}
	v.secret("database.admin.password", d.Admin.Password)
	public := map[string]string{}
	for _, f := range [][2]string{{d.User, "database.user"}, {d.Name, "database.name"}, {d.Admin.User, "database.admin.user"}, {c.Name, "name"}} {
		if _, ok := public[f[0]]; !ok {
			public[f[0]] = f[1] // the first field that shows it is named
		}
	}
	for _, p := range []struct {
		path string
		s    Secret
	}{{"database.password", d.Password}, {"database.admin.password", d.Admin.Password}} {
		val, err := p.s.resolve(v.lookupEnv)
		if err != nil {
			continue // reported by secret, or not there (validate offline)
		}
		w := strings.TrimSpace(val.Reveal())
		if field, ok := public[w]; ok && w != "" {
			v.warnf(p.path, fmt.Sprintf("It is the first guess of anyone who reads the manifest, and haplan does not mask it in its output (that would mask every %s as well). Choose another.", field),
				"%s is the same as %s", p.path, field)
		}
	}
	if via := d.Admin.Via; via != "" && via != AdminDirect && via != AdminViaSSH {
		v.errorf("database.admin.via", `"direct" connects from this machine; "ssh" through a node's SSH connection (the database then sees the node's address).`,
			"database.admin.via %q is neither %q nor %q", via, AdminDirect, AdminViaSSH)
	}
	for i, g := range d.GrantHosts {
		if g == "" {
			v.errorf(index("database.grantHosts", i), "", "database.grantHosts entries must not be empty")
		}
	}
	for i, n := range c.Nodes {
		if d.Host != "" && d.Host == n.Address {
			v.warnf("database.host", "", "database.host %s is also node %s (nodes[%d]): the database should outlive any one server", d.Host, n.Name, i)
		}
	}
}

func (v *validator) loadBalancer(c *Cluster) {
	lb := c.LoadBalancer
	v.address("loadBalancer.address", lb.Address, true)
	if hp := lb.HAProxy; hp != nil {
		if !strings.HasPrefix(hp.ConfigPath, "/") {
			v.errorf("loadBalancer.haproxy.configPath", "", "loadBalancer.haproxy.configPath %q must be an absolute path", hp.ConfigPath)
		}
		if strings.TrimSpace(hp.ReloadCommand) == "" {
			v.errorf("loadBalancer.haproxy.reloadCommand", "", "loadBalancer.haproxy.reloadCommand must not be empty")
		}
		v.sshConfig("loadBalancer.haproxy.ssh", hp.SSH)
	}
}

func (v *validator) nodes(c *Cluster) {
	if n := len(c.Nodes); n != 1 && n != 3 && n != 5 {
		v.errorf("nodes", "Every Rancher HA node runs ZooKeeper, and 2 or 4 nodes tolerate no more failures than 1 or 3.",
			"HA needs 1, 3 or 5 nodes (ZooKeeper quorum); got %d", n)
	}
	names := map[string]int{}
	addrs := map[string]int{}
	cips := map[string]int{}
	for i, n := range c.Nodes {
		p := index("nodes", i)
		switch {
		case n.Name == "":
			v.errorf(p+".name", "", "%s.name is required", p)
		case !nameRE().MatchString(n.Name):
			v.errorf(p+".name", "Use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit.", "node name %q is not usable as an identifier", n.Name)
		case n.Name == layout.LBHost:
			v.errorf(p+".name", reservedName, "node name %q is reserved", n.Name)
		default:
			if j, dup := names[n.Name]; dup {
				v.errorf(p+".name", fmt.Sprintf("nodes[%d] has the same name.", j), "duplicate node name %q", n.Name)
			} else {
				names[n.Name] = i
			}
		}
		v.address(p+".address", n.Address, true)
		if j, dup := addrs[n.Address]; dup && n.Address != "" {
			v.errorf(p+".address", fmt.Sprintf("nodes[%d] has the same address.", j), "duplicate node address %s", n.Address)
		} else {
			addrs[n.Address] = i
		}
		if n.ClusterIP != n.Address {
			v.address(p+".clusterIP", n.ClusterIP, false)
		}
		if j, dup := cips[n.ClusterIP]; dup && n.ClusterIP != "" && n.ClusterIP != n.Address {
			v.errorf(p+".clusterIP", fmt.Sprintf("nodes[%d] has the same clusterIP.", j), "duplicate node clusterIP %s", n.ClusterIP)
		} else {
			cips[n.ClusterIP] = i
		}
		if n.Address != "" && n.Address == c.LoadBalancer.Address {
			v.warnf(p+".address", "Rancher HA expects the load balancer in front of the nodes, on a machine of its own.",
				"node %s has the load balancer's address %s", n.Name, n.Address)
		}
		v.sshConfig(p+".ssh", n.SSH)
	}
}

// firstAt says where the first of two duplicates is.
func (v *validator) firstAt(path string) string {
	if v.where == nil {
		return "First defined as " + path + "."
	}
	return "First defined as " + path + " at " + v.where(path) + "."
}

func (v *validator) hosts(c *Cluster, paths []string) {
	names := map[string]string{}
	addrs := map[string]string{}
	nodeAddrs := map[string]string{}
	agentIPs := map[string]string{}
	for _, n := range c.Nodes {
		nodeAddrs[n.Address] = n.Name
	}
	for i, h := range c.Hosts {
		p := paths[i]
		v.address(p+".address", h.Address, true)
		if h.Name != "" && !nameRE().MatchString(h.Name) {
			v.errorf(p+".name", "Use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit.", "host name %q is not usable as an identifier", h.Name)
		} else if h.Name == layout.LBHost {
			v.errorf(p+".name", reservedName, "host name %q is reserved", h.Name)
		}
		first, nameDup := names[h.Name]
		if nameDup && h.Name != "" {
			v.errorf(p+".name", v.firstAt(first), "duplicate host %q", h.Name)
		} else {
			names[h.Name] = p + ".name"
		}
		if first, dup := addrs[h.Address]; dup && h.Address != "" && !nameDup {
			v.errorf(p+".address", v.firstAt(first), "duplicate host address %s", h.Address)
		} else {
			addrs[h.Address] = p + ".address"
		}
		if n, ok := nodeAddrs[h.Address]; ok && h.Address != "" {
			if h.Register {
				v.errorf(p+".address", "An HA node runs its own agent for System HA; registering it as a host of an environment would replace that agent. Run applications on other machines, or set register: false to only give it the CA.",
					"host %s has the address of node %s", h.Name, n)
			} else {
				v.warnf(p+".address", "", "host %s has the address of node %s", h.Name, n)
			}
		}
		if _, ok := c.Node(h.Name); ok && h.Name != "" {
			v.errorf(p+".name", "Nodes and hosts share one namespace in plans and step addresses.", "host %q has the name of a node", h.Name)
		}
		v.sshConfig(p+".ssh", h.SSH)
		v.hostRegistration(p, h, agentIPs)
	}
}

// hostRegistration checks what a host is registered with: its
// environment, agent IP and labels.
func (v *validator) hostRegistration(p string, h Host, agentIPs map[string]string) {
	env := strings.TrimSpace(h.Environment)
	switch {
	case env == "":
		v.errorf(p+".environment", "Name an environment, or leave the field out for "+DefaultEnvironment+".", "%s.environment must not be empty", p)
	case isSystemHA(env):
		v.errorf(p+".environment", "System HA is the project of the HA nodes' own agents; hosts join an environment of yours (e.g. "+DefaultEnvironment+").", "host %s cannot join %q", h.Name, h.Environment)
	case env != h.Environment || strings.ContainsAny(env, "\n\r\t"):
		v.errorf(p+".environment", "", "%s.environment %q has blanks around it or control characters", p, h.Environment)
	}
	if h.Register && h.AgentIP == "" && net.ParseIP(h.Address) == nil && validHostname(h.Address) {
		v.warnf(p+".address", "Set agentIP to the address the host has in its network: the agent would otherwise register with the address the server sees, which behind the cluster's TCP load balancer is the balancer's, so every such host would get the same one.",
			"host %s is registered without an agentIP, and its address %q is a name", h.Name, h.Address)
	}
	if h.AgentIP != "" {
		if net.ParseIP(h.AgentIP) == nil {
			v.errorf(p+".agentIP", "CATTLE_AGENT_IP is an IP address.", "%s.agentIP: %q is not an IP address", p, h.AgentIP)
		} else if first, dup := agentIPs[h.AgentIP]; dup {
			v.errorf(p+".agentIP", v.firstAt(first), "duplicate agent IP %s: two hosts would register as one address", h.AgentIP)
		} else {
			agentIPs[h.AgentIP] = p + ".agentIP"
		}
	}
	keys := make([]string, 0, len(h.Labels))
	for k := range h.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lp := p + ".labels." + k
		switch {
		case !labelKeyRE().MatchString(k):
			v.errorf(lp, "A label key is letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit.", "label key %q is not valid", k)
		case strings.HasPrefix(k, ReservedLabelPrefix):
			v.errorf(lp, "haplan sets "+HostLabel+" itself, to the host's name, to find the hosts it registered.", "label key %q is reserved for haplan", k)
		case !labelValueRE().MatchString(h.Labels[k]):
			v.errorf(lp, "A label value has no blanks, quotes, '&', '=' or control characters (CATTLE_HOST_LABELS is k1=v1&k2=v2).", "label %s: value %q is not valid", k, h.Labels[k])
		}
	}
}

var systemHAFold = strings.NewReplacer(" ", "", "-", "", "_", "")

// isSystemHA reports an environment name that is Rancher's System HA
// project ("System HA"; cattle names its kind system-ha).
func isSystemHA(name string) bool {
	n := strings.ToLower(systemHAFold.Replace(name))
	return strings.HasPrefix(n, "systemha")
}

// The label syntax, shared with the schema.
const (
	labelKeyPattern   = `^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`
	labelValuePattern = `^[^&=\s"'\\\x00-\x1f\x7f]*$`
)

var labelKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(labelKeyPattern) })
var labelValueRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(labelValuePattern) })
