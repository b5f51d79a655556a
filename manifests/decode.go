package manifests

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/haplan/haplan/diag"
)

// decoder turns a node tree into a Cluster, applying defaults, and records
// where each value path came from.
type decoder struct {
	dir   string // manifest directory, for relative paths
	home  string // for "~/" paths; empty leaves them unexpanded
	diags diag.Diagnostics
	// pos maps a value path ("nodes[1].address") to the value's range;
	// keyPos maps it to the key's range.
	pos, keyPos map[string]diag.Range
	// container marks paths whose value is a mapping or list: positions
	// for them point at the key.
	container map[string]bool
	// failed are paths with decode errors; validation stays quiet about
	// them and everything below them.
	failed []string
	// filename names the manifest in ranges.
	filename string
	// hostsFile is the manifest's hostsFile value, if any.
	hostsFile string
	// defHost holds hostDefaults, for hosts and hostsFile lines.
	defHost Host
	// defSSH is the manifest's ssh defaults merged over the built-in ones.
	defSSH SSH
}

func newDecoder(filename, dir, home string) *decoder {
	return &decoder{filename: filename, dir: dir, home: home, pos: map[string]diag.Range{},
		keyPos: map[string]diag.Range{}, container: map[string]bool{}}
}

func (d *decoder) errAt(n *node, path, summary, detail string) {
	r := n.rng
	d.failed = append(d.failed, path)
	d.diags = d.diags.Append(diag.Diagnostic{Severity: diag.Error, Summary: summary, Detail: detail, Path: path, Subject: &r})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// obj checks that n is a mapping of known, unique keys and returns them.
// A nil or null n is an absent object and yields an empty map.
func (d *decoder) obj(n *node, path, kind string) map[string]*node {
	out := map[string]*node{}
	if n == nil || n.kind == kindNull {
		return out
	}
	d.pos[path] = n.rng
	if n.kind != kindMap {
		d.errAt(n, path, fmt.Sprintf("%s must be a mapping, not %s", describe(path), n.kind), "")
		return out
	}
	known := objectKeys(kind)
	for _, e := range n.entries {
		p := join(path, e.key)
		if !contains(known, e.key) {
			detail := ""
			if s := suggest(e.key, known); s != "" {
				detail = fmt.Sprintf("Did you mean %q?", s)
				d.failed = append(d.failed, join(path, s))
			} else {
				detail = "Valid keys here: " + strings.Join(known, ", ") + "."
			}
			if !isASCII(e.key) {
				detail = "The name has characters that are not ASCII (a look-alike letter?). " + detail
			}
			r := e.keyRng
			d.diags = d.diags.Append(diag.Diagnostic{Severity: diag.Error,
				Summary: fmt.Sprintf("unknown field %+q", e.key), Detail: detail, Path: path, Subject: &r})
			continue
		}
		if _, dup := out[e.key]; dup {
			r := e.keyRng
			first := d.keyPos[p]
			d.diags = d.diags.Append(diag.Diagnostic{Severity: diag.Error,
				Summary: fmt.Sprintf("duplicate field %q", e.key),
				Detail:  fmt.Sprintf("It was already set on line %d.", first.Start.Line), Path: path, Subject: &r})
			continue
		}
		out[e.key] = e.val
		d.pos[p] = e.val.rng
		d.keyPos[p] = e.keyRng
		if e.val.kind == kindMap || e.val.kind == kindSeq {
			d.container[p] = true
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// describe names a path for messages: "nodes[1].ssh" or "the manifest".
func describe(path string) string {
	if path == "" {
		return "the manifest"
	}
	return path
}

func present(n *node) bool { return n != nil && n.kind != kindNull }

// str decodes a string; absent or null leaves def.
func (d *decoder) str(n *node, path, def string) string {
	if !present(n) {
		return def
	}
	if n.kind != kindString {
		detail := ""
		if n.kind == kindInt || n.kind == kindFloat || n.kind == kindBool {
			detail = "Quote the value to make it a string."
		}
		d.errAt(n, path, fmt.Sprintf("%s must be a string, not %s", path, n.kind), detail)
		return def
	}
	return n.text
}

// integer decodes an integer; absent or null leaves def.
func (d *decoder) integer(n *node, path string, def int) int {
	if !present(n) {
		return def
	}
	if n.kind != kindInt {
		d.errAt(n, path, fmt.Sprintf("%s must be an integer, not %s", path, n.kind), "")
		return def
	}
	v, err := strconv.Atoi(n.text)
	if err != nil {
		d.errAt(n, path, fmt.Sprintf("%s is out of range", path), "")
		return def
	}
	return v
}

func (d *decoder) duration(n *node, path string, def time.Duration) time.Duration {
	s := d.str(n, path, "")
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errAt(n, path, fmt.Sprintf("%s: invalid duration %q", path, s), `Use a Go duration such as "90s", "15m" or "1h30m".`)
		return def
	}
	if v <= 0 {
		d.errAt(n, path, fmt.Sprintf("%s must be positive, got %q", path, s), "")
		return def
	}
	return v
}

func (d *decoder) strList(n *node, path string) []string {
	if !present(n) {
		return nil
	}
	if n.kind != kindSeq {
		d.errAt(n, path, fmt.Sprintf("%s must be a list of strings, not %s", path, n.kind), "")
		return nil
	}
	var out []string
	for i, it := range n.items {
		p := index(path, i)
		d.pos[p] = it.rng
		if present(it) {
			out = append(out, d.str(it, p, ""))
		}
	}
	return out
}

// boolean decodes true or false; absent or null leaves def.
func (d *decoder) boolean(n *node, path string, def bool) bool {
	if !present(n) {
		return def
	}
	if n.kind != kindBool {
		d.errAt(n, path, fmt.Sprintf("%s must be true or false, not %s", path, n.kind), "")
		return def
	}
	return n.text == "true"
}

// strMap decodes a mapping of strings to strings (labels); absent or null
// yields nil. Keys keep their positions as path.key.
func (d *decoder) strMap(n *node, path string) map[string]string {
	if !present(n) {
		return nil
	}
	d.pos[path] = n.rng
	if n.kind != kindMap {
		d.errAt(n, path, fmt.Sprintf("%s must be a mapping of names to strings, not %s", path, n.kind), "")
		return nil
	}
	out := map[string]string{}
	for _, e := range n.entries {
		p := join(path, e.key)
		if _, dup := out[e.key]; dup {
			r := e.keyRng
			d.diags = d.diags.Append(diag.Diagnostic{Severity: diag.Error,
				Summary: fmt.Sprintf("duplicate label %q", e.key), Path: path, Subject: &r})
			continue
		}
		d.pos[p] = e.val.rng
		d.keyPos[p] = e.keyRng
		out[e.key] = d.str(e.val, p, "")
	}
	return out
}

// inheritPositions points a host's fields that came from hostDefaults at
// where the defaults wrote them, so a diagnostic about the value names the
// line that set it. own are the host's own fields (nil for a hostsFile
// line).
func (d *decoder) inheritPositions(path string, own map[string]*node) {
	for _, k := range []string{"register", "environment"} {
		if _, set := own[k]; set {
			continue
		}
		if r, ok := d.pos["hostDefaults."+k]; ok {
			d.pos[path+"."+k] = r
		}
	}
	// The defaults' labels, not every position: once per host, a scan of
	// all positions would make a long host list quadratic.
	for lk := range d.defHost.Labels {
		k := "hostDefaults.labels." + lk
		r, ok := d.pos[k]
		if !ok {
			continue
		}
		if _, set := d.pos[path+".labels."+lk]; !set {
			d.pos[path+".labels."+lk] = r
			d.keyPos[path+".labels."+lk] = d.keyPos[k]
		}
	}
}

// mergeLabels is defaults overridden by own; nil when both are empty.
func mergeLabels(defaults, own map[string]string) map[string]string {
	if len(defaults)+len(own) == 0 {
		return nil
	}
	out := make(map[string]string, len(defaults)+len(own))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// seq returns the items of a list; absent or null yields none.
func (d *decoder) seq(n *node, path string) []*node {
	if !present(n) {
		return nil
	}
	if n.kind != kindSeq {
		d.errAt(n, path, fmt.Sprintf("%s must be a list, not %s", path, n.kind), "")
		return nil
	}
	for i, it := range n.items {
		d.pos[index(path, i)] = it.rng
	}
	return n.items
}

// localPath expands "~/" and makes relative paths relative to the
// manifest's directory.
func (d *decoder) localPath(p string) string {
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if d.home == "" {
			return p
		}
		p = filepath.Join(d.home, p[1:])
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return filepath.Clean(p)
}

func (d *decoder) secret(n *node, path string) Secret {
	if !present(n) {
		return Secret{}
	}
	if n.kind != kindMap {
		// Never echo the value: it may be the secret itself.
		d.errAt(n, path, fmt.Sprintf("%s must be a reference to a secret, not %s", path, n.kind),
			"Write {env: NAME} or {file: PATH}; secret values never go in the manifest.")
		return Secret{}
	}
	f := d.obj(n, path, "secret")
	s := Secret{Env: d.str(f["env"], join(path, "env"), "")}
	if file := d.str(f["file"], join(path, "file"), ""); file != "" {
		s.File = d.localPath(file)
	}
	return s
}

// sshOverride holds the ssh keys one block sets.
type sshOverride struct {
	user, identityFile, knownHostsFile, hostKeyPolicy, hostKey, bastion *string
	port                                                                *int
}

func (d *decoder) sshBlock(n *node, path string) sshOverride {
	f := d.obj(n, path, "ssh")
	var o sshOverride
	setStr := func(key string, dst **string, isPath bool) {
		if v := f[key]; present(v) {
			s := d.str(v, join(path, key), "")
			if isPath {
				s = d.localPath(s)
			}
			*dst = &s
		}
	}
	setStr("user", &o.user, false)
	setStr("identityFile", &o.identityFile, true)
	setStr("knownHostsFile", &o.knownHostsFile, true)
	setStr("hostKeyPolicy", &o.hostKeyPolicy, false)
	setStr("hostKey", &o.hostKey, false)
	setStr("bastion", &o.bastion, false)
	if v := f["port"]; present(v) {
		p := d.integer(v, join(path, "port"), 0)
		o.port = &p
	}
	return o
}

func (o sshOverride) apply(s SSH) SSH {
	for _, f := range []struct {
		src *string
		dst *string
	}{{o.user, &s.User}, {o.identityFile, &s.IdentityFile}, {o.knownHostsFile, &s.KnownHostsFile},
		{o.hostKeyPolicy, &s.HostKeyPolicy}, {o.hostKey, &s.HostKey}, {o.bastion, &s.Bastion}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if o.port != nil {
		s.Port = *o.port
		s.Explicit |= SSHPort
	}
	if o.user != nil {
		s.Explicit |= SSHUser
	}
	if o.identityFile != nil {
		s.Explicit |= SSHIdentityFile
	}
	return s
}

// decodeCluster decodes the manifest root. Hosts from the hostsFile are
// added by the loader.
func (d *decoder) decodeCluster(root *node) *Cluster {
	c := &Cluster{}
	if root != nil {
		d.pos[""] = root.rng
	}
	f := d.obj(root, "", "cluster")
	c.Name = d.str(f["name"], "name", "")

	defSSH := SSH{User: DefaultSSHUser, Port: DefaultSSHPort, IdentityFile: d.localPath(DefaultIdentityFile),
		KnownHostsFile: d.localPath(DefaultKnownHostsFile), HostKeyPolicy: DefaultHostKeyPolicy}
	defSSH = d.sshBlock(f["ssh"], "ssh").apply(defSSH)
	d.defSSH = defSSH
	c.SSH = defSSH

	lf := d.obj(f["loadBalancer"], "loadBalancer", "loadBalancer")
	c.LoadBalancer.Address = d.str(lf["address"], "loadBalancer.address", "")
	if hp := lf["haproxy"]; present(hp) {
		hf := d.obj(hp, "loadBalancer.haproxy", "haproxy")
		c.LoadBalancer.HAProxy = &HAProxy{
			ConfigPath:    d.str(hf["configPath"], "loadBalancer.haproxy.configPath", DefaultHAProxyConfigPath),
			ReloadCommand: d.str(hf["reloadCommand"], "loadBalancer.haproxy.reloadCommand", DefaultHAProxyReloadCommand),
			SSH:           d.sshBlock(hf["ssh"], "loadBalancer.haproxy.ssh").apply(defSSH),
		}
	}

	for i, nn := range d.seq(f["nodes"], "nodes") {
		p := index("nodes", i)
		nf := d.obj(nn, p, "node")
		n := Node{
			Name:    d.str(nf["name"], p+".name", ""),
			Address: d.str(nf["address"], p+".address", ""),
			SSH:     d.sshBlock(nf["ssh"], p+".ssh").apply(defSSH),
		}
		n.ClusterIP = d.str(nf["clusterIP"], p+".clusterIP", n.Address)
		c.Nodes = append(c.Nodes, n)
	}
	hd := d.obj(f["hostDefaults"], "hostDefaults", "hostDefaults")
	d.defHost = Host{
		Register:    d.boolean(hd["register"], "hostDefaults.register", true),
		Environment: d.str(hd["environment"], "hostDefaults.environment", DefaultEnvironment),
		Labels:      d.strMap(hd["labels"], "hostDefaults.labels"),
	}
	for i, hn := range d.seq(f["hosts"], "hosts") {
		p := index("hosts", i)
		hf := d.obj(hn, p, "host")
		h := Host{
			Address:     d.str(hf["address"], p+".address", ""),
			SSH:         d.sshBlock(hf["ssh"], p+".ssh").apply(defSSH),
			Register:    d.boolean(hf["register"], p+".register", d.defHost.Register),
			Environment: d.str(hf["environment"], p+".environment", d.defHost.Environment),
			AgentIP:     d.str(hf["agentIP"], p+".agentIP", ""),
			Labels:      mergeLabels(d.defHost.Labels, d.strMap(hf["labels"], p+".labels")),
		}
		h.Name = d.str(hf["name"], p+".name", h.Address)
		d.inheritPositions(p, hf)
		c.Hosts = append(c.Hosts, h)
	}
	d.hostsFile = d.str(f["hostsFile"], "hostsFile", "")

	rf := d.obj(f["rancher"], "rancher", "rancher")
	c.Rancher.Image = d.str(rf["image"], "rancher.image", DefaultImage)
	c.Rancher.AgentImage = d.str(rf["agentImage"], "rancher.agentImage", DefaultAgentImage)
	c.Rancher.AgentInstanceImage = d.str(rf["agentInstanceImage"], "rancher.agentInstanceImage", DefaultAgentInstanceImage)
	c.Rancher.ImageRegistry = d.str(rf["imageRegistry"], "rancher.imageRegistry", "")
	def := ""
	if a := c.LoadBalancer.Address; a != "" {
		if strings.Contains(a, ":") { // IPv6
			a = "[" + a + "]"
		}
		def = "https://" + a
	}
	c.Rancher.HostRegistrationURL = d.str(rf["hostRegistrationUrl"], "rancher.hostRegistrationUrl", def)
	def = ""
	if len(c.Nodes) > 0 {
		def = c.Nodes[0].Name
	}
	c.Rancher.BootstrapNode = d.str(rf["bootstrapNode"], "rancher.bootstrapNode", def)
	if cn := rf["certificate"]; present(cn) {
		cf := d.obj(cn, "rancher.certificate", "certificate")
		c.Rancher.Certificate = &Certificate{
			Cert:  d.secret(cf["cert"], "rancher.certificate.cert"),
			Key:   d.secret(cf["key"], "rancher.certificate.key"),
			Chain: d.secret(cf["chain"], "rancher.certificate.chain"),
		}
	}
	if kn := rf["apiKey"]; present(kn) {
		kf := d.obj(kn, "rancher.apiKey", "apiKey")
		c.Rancher.APIKey = &APIKey{
			AccessKey: d.secret(kf["accessKey"], "rancher.apiKey.accessKey"),
			SecretKey: d.secret(kf["secretKey"], "rancher.apiKey.secretKey"),
		}
	}
	tf := d.obj(rf["timeouts"], "rancher.timeouts", "timeouts")
	c.Rancher.Timeouts = Timeouts{
		Bootstrap:        d.duration(tf["bootstrap"], "rancher.timeouts.bootstrap", DefaultBootstrapTimeout),
		ClusterFormation: d.duration(tf["clusterFormation"], "rancher.timeouts.clusterFormation", DefaultClusterFormationTimeout),
		SSH:              d.duration(tf["ssh"], "rancher.timeouts.ssh", DefaultSSHTimeout),
		Command:          d.duration(tf["command"], "rancher.timeouts.command", DefaultCommandTimeout),
		Pull:             d.duration(tf["pull"], "rancher.timeouts.pull", DefaultPullTimeout),
		Register:         d.duration(tf["register"], "rancher.timeouts.register", DefaultRegisterTimeout),
	}

	df := d.obj(f["database"], "database", "database")
	c.Database = Database{
		Host:       d.str(df["host"], "database.host", ""),
		Port:       d.integer(df["port"], "database.port", DefaultDatabasePort),
		Name:       d.str(df["name"], "database.name", DefaultDatabaseName),
		User:       d.str(df["user"], "database.user", DefaultDatabaseUser),
		Password:   d.secret(df["password"], "database.password"),
		GrantHosts: d.strList(df["grantHosts"], "database.grantHosts"),
	}
	af := d.obj(df["admin"], "database.admin", "admin")
	c.Database.Admin = DBAdmin{
		User:     d.str(af["user"], "database.admin.user", ""),
		Password: d.secret(af["password"], "database.admin.password"),
		Via:      d.str(af["via"], "database.admin.via", ""),
	}
	return c
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
