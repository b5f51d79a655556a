package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/haplan/haplan/diag"
	"github.com/haplan/haplan/internal/fileread"
)

// Loader loads manifests. The zero value reads the process environment and
// the user's home directory; tests set the fields instead.
type Loader struct {
	// LookupEnv checks that {env: NAME} secrets are set (the value is not
	// kept). Nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// HomeDir replaces "~" in paths. Empty means os.UserHomeDir.
	HomeDir string
	// SecretsOptional makes a secret that is not there (an unset
	// variable, a missing file) a warning, not an error: validating a
	// manifest where the production secrets are not (a CI job). Secrets()
	// then fails for it.
	SecretsOptional bool
	// Format overrides the format the file name says: "yaml" or "hcl"
	// (a manifest read from standard input has no name to tell).
	Format string
}

// Load reads, decodes and validates the manifest at path (.yaml, .yml or
// .hcl) with the zero Loader.
func Load(path string) (*Cluster, diag.Diagnostics) { return Loader{}.Load(path) }

// LoadBytes is Load for a manifest already in memory; filename names it in
// diagnostics and picks the format, and dir resolves relative paths.
func LoadBytes(filename string, src []byte, dir string) (*Cluster, diag.Diagnostics) {
	return Loader{}.LoadBytes(filename, src, dir)
}

// Load reads the manifest at path. The Cluster is never nil: even when
// diags has errors it carries Path and Sources() for diag.Render, but its
// other fields must then not be used.
func (l Loader) Load(path string) (*Cluster, diag.Diagnostics) {
	src, err := readRegular(path, maxManifest)
	if err != nil {
		c := &Cluster{Path: path, Dir: absDir(filepath.Dir(path)), sources: map[string][]byte{}}
		return c, diag.Diagnostics{{Severity: diag.Error, Summary: fmt.Sprintf("cannot read manifest: %s", errReason(err)), Path: path}}
	}
	return l.LoadBytes(path, src, filepath.Dir(path))
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// LoadReader reads a manifest of at most 4 MiB from r (standard input),
// named name in diagnostics, its relative paths resolved from dir.
func (l Loader) LoadReader(name string, r io.Reader, dir string) (*Cluster, diag.Diagnostics) {
	src, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err == nil && len(src) > maxManifest {
		err = fmt.Errorf("larger than %d MiB", maxManifest>>20)
	}
	if err != nil {
		c := &Cluster{Path: name, Dir: absDir(dir), sources: map[string][]byte{}}
		return c, diag.Diagnostics{{Severity: diag.Error, Summary: fmt.Sprintf("cannot read manifest: %s", errReason(err)), Path: name}}
	}
	return l.LoadBytes(name, src, dir)
}

// LoadBytes decodes and validates src. See Load.
func (l Loader) LoadBytes(filename string, src []byte, dir string) (*Cluster, diag.Diagnostics) {
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	home := l.HomeDir
	if home == "" {
		home, _ = os.UserHomeDir() // without a home, "~" paths stay as written
	}
	dir = absDir(dir)
	sum := sha256.New()
	sum.Write(src)
	sources := map[string][]byte{filename: src}
	empty := &Cluster{Path: filename, Dir: dir, sources: sources, Digest: hex.EncodeToString(sum.Sum(nil))}

	var root *node
	var diags diag.Diagnostics
	ext := strings.ToLower(filepath.Ext(filename))
	switch {
	case l.Format != "":
		ext = "." + l.Format
	case ext == ".json":
		ext = ".yaml" // JSON is YAML
	}
	if ext == ".yaml" || ext == ".yml" || ext == ".hcl" {
		var ds diag.Diagnostics
		if src, ds = checkText(filename, src, "manifest"); ds == nil {
			ds = emptyManifest(filename, src)
		}
		if ds == nil && len(src) > maxManifest {
			ds = scanPos{1, 1}.diag(filename, fmt.Sprintf("the manifest is larger than %d MiB", maxManifest>>20), "Put long host lists in a hostsFile.")
		}
		if ds == nil && ext == ".hcl" {
			ds = prescanHCL(filename, src)
		} else if ds == nil {
			ds = prescanYAML(filename, src)
		}
		if ds != nil {
			return empty, ds
		}
	}
	switch ext {
	case ".yaml", ".yml":
		root, diags = parseYAML(filename, src)
	case ".hcl":
		root, diags = parseHCL(filename, src)
	default:
		return empty, diag.Diagnostics{{Severity: diag.Error, Path: filename,
			Summary: fmt.Sprintf("unknown manifest format %q", ext), Detail: "Name the file *.yaml, *.yml, *.json or *.hcl."}}
	}
	if root == nil {
		return empty, diags
	}
	diags = append(diags, lineBreaks(root)...)

	d := newDecoder(filename, dir, home)
	c := d.decodeCluster(root)
	diags = append(diags, d.diags...)
	c.Path, c.Dir, c.sources = filename, dir, sources

	hostPaths := make([]string, 0, len(c.Hosts))
	for i := range c.Hosts {
		hostPaths = append(hostPaths, index("hosts", i))
	}
	if d.hostsFile != "" {
		hosts, paths, hdiags, hsrc := d.loadHostsFile(filename, c)
		diags = append(diags, hdiags...)
		c.Hosts = append(c.Hosts, hosts...)
		hostPaths = append(hostPaths, paths...)
		sum.Write(hsrc)
	}
	c.Digest = hex.EncodeToString(sum.Sum(nil))

	v := &validator{dir: dir, lookupEnv: lookup, secretsOptional: l.SecretsOptional,
		written: func(p string) bool { _, ok := d.pos[p]; return ok },
		where:   func(p string) string { return d.rangeFor(p).String() }}
	v.validate(c, hostPaths)
	failed := make(map[string]bool, len(d.failed))
	for _, f := range d.failed {
		failed[f] = true
	}
	for _, vd := range v.diags {
		if covered(vd.Path, failed) {
			continue // a decode error already explains this
		}
		r := d.rangeFor(vd.Path)
		vd.Subject = &r
		diags = append(diags, vd)
	}
	return c, diags
}

// loadHostsFile reads the hostsFile and turns its lines into hosts with the
// default SSH settings, recording each entry's position as
// "hostsFile[i]". It returns the file's bytes for the digest.
func (d *decoder) loadHostsFile(manifest string, c *Cluster) ([]Host, []string, diag.Diagnostics, []byte) {
	full := d.localPath(d.hostsFile)
	shown := d.hostsFile
	if !filepath.IsAbs(shown) && !strings.HasPrefix(shown, "~") {
		shown = filepath.Join(filepath.Dir(manifest), shown)
	}
	src, err := readRegular(full, maxHostsFile)
	if err != nil {
		r := d.rangeFor("hostsFile")
		return nil, nil, diag.Diagnostics{{Severity: diag.Error, Path: "hostsFile", Subject: &r,
			Summary: fmt.Sprintf("cannot read hostsFile %s: %s", d.hostsFile, errReason(err))}}, nil
	}
	c.sources[shown] = src
	entries, diags := parseHostsFile(shown, src)
	var hosts []Host
	var paths []string
	for i, e := range entries {
		p := index("hostsFile", i)
		d.pos[p] = e.lineRng
		d.pos[p+".name"] = e.nameRng
		d.pos[p+".address"] = e.addressRng
		h := Host{Name: e.name, Address: e.address, SSH: d.defSSH,
			Register: d.defHost.Register, Environment: d.defHost.Environment, Labels: mergeLabels(d.defHost.Labels, nil)}
		diags = append(diags, applyHostsFileOpts(&h, e.opts, p, d.pos, i+1)...)
		d.inheritPositions(p, nil)
		hosts = append(hosts, h)
		paths = append(paths, p)
	}
	return hosts, paths, diags, src
}

// rangeFor turns a value path into a source range: the value itself when
// it was written, the key for a mapping or list, and otherwise the nearest
// enclosing thing that was written (a missing field points at its parent).
func (d *decoder) rangeFor(path string) diag.Range {
	for p := path; ; p = parentPath(p) {
		if d.container[p] || p != path {
			if r, ok := d.keyPos[p]; ok {
				return r
			}
		}
		if r, ok := d.pos[p]; ok {
			return r
		}
		if p == "" {
			return diag.Range{Filename: d.filename, Start: diag.Pos{Line: 1, Column: 1}, End: diag.Pos{Line: 1, Column: 1}}
		}
	}
}

// parentPath strips the last ".key" or "[i]".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// covered reports a path that is, or lies under, one whose decoding
// failed: looked up for the path and each of its parents, not by a scan of
// every failure (thousands of hosts may each have one).
func covered(path string, failed map[string]bool) bool {
	for p := path; ; p = parentPath(p) {
		if failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// maxHostsFile bounds a hosts file: a few thousand hosts, not /dev/zero.
const maxHostsFile = 4 << 20

// readRegular reads a file the manifest names (fileread.Regular).
func readRegular(path string, limit int64) ([]byte, error) { return fileread.Regular(path, limit) }
