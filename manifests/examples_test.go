package manifests

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The examples in examples/ are the documentation users copy from: each
// must carry the schema line, match the committed JSON Schema and load
// without a diagnostic.

const schemaLine = "# yaml-language-server: $schema=../schema/cluster.schema.json"

func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"../examples/*.yaml", "../examples/*.yml", "../examples/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"cluster.hcl", "cluster.yaml", "minimal.yaml"} {
		if !contains(names, want) {
			t.Fatalf("examples/ lacks %s (has %v)", want, names)
		}
	}
	return files
}

func committedSchemaDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", committedSchema, err)
	}
	return s
}

// parseTree parses a manifest into the loader's format-neutral tree.
func parseTree(t *testing.T, name string, src []byte) *node {
	t.Helper()
	parse := parseYAML
	if strings.HasSuffix(name, ".hcl") {
		parse = parseHCL
	}
	n, ds := parse(name, src)
	if ds.HasErrors() {
		t.Fatalf("%s does not parse: %v", name, ds)
	}
	return n
}

// toJSON turns a tree into the values encoding/json would decode the same
// document to, except that integers stay int64 so "integer" can be told
// from "number".
func toJSON(n *node) any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case kindMap:
		m := map[string]any{}
		for _, e := range n.entries {
			m[e.key] = toJSON(e.val)
		}
		return m
	case kindSeq:
		l := []any{}
		for _, it := range n.items {
			l = append(l, toJSON(it))
		}
		return l
	case kindString:
		return n.text
	case kindInt:
		i, err := strconv.ParseInt(n.text, 0, 64)
		if err != nil {
			return n.text
		}
		return i
	case kindFloat:
		f, err := strconv.ParseFloat(n.text, 64)
		if err != nil {
			return n.text
		}
		return f
	case kindBool:
		return n.text == "true"
	}
	return nil
}

// schemaValidator checks a value against the subset of JSON Schema 2020-12
// that Schema() uses. A keyword it does not know is itself an error, so a
// schema that grows a new keyword cannot pass unchecked.
type schemaValidator struct {
	root map[string]any
	errs []string
}

var annotationKeywords = map[string]bool{"$schema": true, "$id": true, "$defs": true, "title": true, "description": true}

func (v *schemaValidator) errorf(path, format string, args ...any) {
	if path == "" {
		path = "(root)"
	}
	v.errs = append(v.errs, path+": "+fmt.Sprintf(format, args...))
}

func (v *schemaValidator) validate(s map[string]any, val any, path string) {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kw := s[k]
		switch k {
		case "$ref":
			ref, _ := kw.(string)
			target, ok := v.resolve(ref)
			if !ok {
				v.errorf(path, "unresolvable $ref %q", ref)
				continue
			}
			v.validate(target, val, path)
		case "type":
			if !hasType(val, kw.(string)) {
				v.errorf(path, "%s is not of type %s", describeJSON(val), kw)
			}
		case "properties":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			props := kw.(map[string]any)
			for name, sub := range props {
				if pv, ok := obj[name]; ok {
					v.validate(sub.(map[string]any), pv, join(path, name))
				}
			}
		case "additionalProperties":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			props, _ := s["properties"].(map[string]any)
			for name, pv := range obj {
				if _, declared := props[name]; declared {
					continue
				}
				switch ap := kw.(type) {
				case bool:
					if !ap {
						v.errorf(join(path, name), "additional property %q is not allowed", name)
					}
				case map[string]any:
					v.validate(ap, pv, join(path, name))
				}
			}
		case "propertyNames":
			if obj, ok := val.(map[string]any); ok {
				for name := range obj {
					v.validate(kw.(map[string]any), name, join(path, name))
				}
			}
		case "required":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for _, r := range kw.([]any) {
				if _, ok := obj[r.(string)]; !ok {
					v.errorf(path, "required property %q is missing", r)
				}
			}
		case "enum":
			found := false
			for _, e := range kw.([]any) {
				if reflect.DeepEqual(e, val) {
					found = true
				}
			}
			if !found {
				v.errorf(path, "%s is not one of %v", describeJSON(val), kw)
			}
		case "items":
			if l, ok := val.([]any); ok {
				for i, it := range l {
					v.validate(kw.(map[string]any), it, index(path, i))
				}
			}
		case "oneOf", "anyOf":
			matches := 0
			for _, sub := range kw.([]any) {
				if len(v.sub(sub.(map[string]any), val, path)) == 0 {
					matches++
				}
			}
			if (k == "oneOf" && matches != 1) || (k == "anyOf" && matches == 0) {
				v.errorf(path, "%s matches %d of the %s alternatives", describeJSON(val), matches, k)
			}
		case "minItems", "maxItems":
			if l, ok := val.([]any); ok {
				n := int(kw.(float64))
				if (k == "minItems" && len(l) < n) || (k == "maxItems" && len(l) > n) {
					v.errorf(path, "%d items violates %s %d", len(l), k, n)
				}
			}
		case "minimum", "maximum":
			if f, ok := number(val); ok {
				n := kw.(float64)
				if (k == "minimum" && f < n) || (k == "maximum" && f > n) {
					v.errorf(path, "%v violates %s %v", f, k, n)
				}
			}
		case "minLength":
			if str, ok := val.(string); ok && len([]rune(str)) < int(kw.(float64)) {
				v.errorf(path, "%q is shorter than %v", str, kw)
			}
		case "pattern":
			if str, ok := val.(string); ok {
				re, err := regexp.Compile(kw.(string))
				if err != nil {
					v.errorf(path, "bad pattern %q: %v", kw, err)
				} else if !re.MatchString(str) {
					v.errorf(path, "%q does not match %s", str, kw)
				}
			}
		default:
			if !annotationKeywords[k] {
				v.errorf(path, "the test's validator does not know keyword %q: teach it", k)
			}
		}
	}
}

// sub validates against an alternative without recording its errors.
func (v *schemaValidator) sub(s map[string]any, val any, path string) []string {
	inner := &schemaValidator{root: v.root}
	inner.validate(s, val, path)
	return inner.errs
}

func (v *schemaValidator) resolve(ref string) (map[string]any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	cur := v.root
	for _, p := range strings.Split(ptr, "/") {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func number(val any) (float64, bool) {
	switch x := val.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func hasType(val any, typ string) bool {
	switch typ {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "integer":
		switch x := val.(type) {
		case int64:
			return true
		case float64:
			return x == math.Trunc(x)
		}
		return false
	case "number":
		_, ok := number(val)
		return ok
	case "null":
		return val == nil
	}
	return false
}

func describeJSON(val any) string {
	switch x := val.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return fmt.Sprintf("an array of %d", len(x))
	case nil:
		return "null"
	}
	return fmt.Sprintf("%#v", val)
}

func validateAgainst(root map[string]any, val any) []string {
	v := &schemaValidator{root: root}
	v.validate(root, val, "")
	sort.Strings(v.errs)
	return v.errs
}

func TestExamplesMatchSchema(t *testing.T) {
	root := committedSchemaDoc(t)
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(src), "\n"); first != schemaLine {
				t.Errorf("first line is %q, want %q", first, schemaLine)
			}
			doc := toJSON(parseTree(t, filepath.Base(f), src))
			if errs := validateAgainst(root, doc); len(errs) > 0 {
				t.Errorf("does not match %s:\n  %s", committedSchema, strings.Join(errs, "\n  "))
			}
		})
	}
}

// TestSchemaValidatorRejects proves the validator above can fail: each
// case breaks a valid document in one way the schema forbids.
func TestSchemaValidatorRejects(t *testing.T) {
	root := committedSchemaDoc(t)
	src, err := os.ReadFile("../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	valid := func() map[string]any {
		return toJSON(parseTree(t, "cluster.yaml", src)).(map[string]any)
	}
	at := func(m map[string]any, path ...string) map[string]any {
		for _, p := range path {
			m = m[p].(map[string]any)
		}
		return m
	}
	node0 := func(m map[string]any) map[string]any { return m["nodes"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name   string
		mutate func(m map[string]any)
		want   []string
	}{
		{"unknown top-level key", func(m map[string]any) { m["nmae"] = "x" },
			[]string{`nmae: additional property "nmae" is not allowed`}},
		{"unknown key in a node, through $ref", func(m map[string]any) { node0(m)["adress"] = "x" },
			[]string{`nodes[0].adress: additional property "adress" is not allowed`}},
		{"missing required", func(m map[string]any) { delete(m, "nodes") },
			[]string{`(root): required property "nodes" is missing`}},
		{"wrong type", func(m map[string]any) { at(m, "ssh")["port"] = "22" },
			[]string{`ssh.port: "22" is not of type integer`}},
		{"out of range", func(m map[string]any) { at(m, "database")["port"] = int64(0) },
			[]string{`database.port: 0 violates minimum 1`}},
		{"enum", func(m map[string]any) { at(m, "ssh")["hostKeyPolicy"] = "yes" },
			[]string{`ssh.hostKeyPolicy: "yes" is not one of [strict accept-new]`}},
		{"pattern", func(m map[string]any) { m["name"] = "Prod_Rancher" },
			[]string{`name: "Prod_Rancher" does not match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`}},
		{"two nodes match no anyOf alternative", func(m map[string]any) { m["nodes"] = m["nodes"].([]any)[:2] },
			[]string{`nodes: an array of 2 matches 0 of the anyOf alternatives`}},
		{"secret with env and file matches both oneOf alternatives", func(m map[string]any) {
			at(m, "database", "password")["file"] = "pw"
		}, []string{`database.password: an object matches 2 of the oneOf alternatives`}},
		{"empty secret matches no oneOf alternative", func(m map[string]any) {
			at(m, "database", "admin")["password"] = map[string]any{}
		}, []string{`database.admin.password: an object matches 0 of the oneOf alternatives`}},
		{"array item type", func(m map[string]any) { at(m, "database")["grantHosts"] = []any{""} },
			[]string{`database.grantHosts[0]: "" is shorter than 1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.mutate(m)
			if diff := cmp.Diff(tc.want, validateAgainst(root, m)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// A keyword the validator does not know fails rather than passing.
	odd := map[string]any{"type": "object", "dependentRequired": map[string]any{}}
	if errs := validateAgainst(odd, map[string]any{}); len(errs) != 1 || !strings.Contains(errs[0], "dependentRequired") {
		t.Errorf("unknown keyword: errors %v", errs)
	}
}

// exampleEnv sets every environment variable the examples reference.
func exampleEnv(name string) (string, bool) {
	switch name {
	case "HAPLAN_DB_PASSWORD", "HAPLAN_DB_ADMIN_PASSWORD", "RANCHER_ACCESS_KEY", "RANCHER_SECRET_KEY":
		return "pw-" + name, true
	}
	return "", false
}

// TestExamplesLoad loads every example, from a directory that holds the
// files they reference, without a single diagnostic; the HCL twin of
// cluster.yaml must load to the same cluster.
func TestExamplesLoad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"tls/server-cert.pem":       testTLS.cert,
		"tls/server-key.pem":        testTLS.key,
		"tls/ca.crt":                testTLS.chain,
		"secrets/db-admin-password": "admin-pw\n",
		"hosts.txt":                 "10.0.1.3\nh4 10.0.1.4\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := Loader{LookupEnv: exampleEnv, HomeDir: testHome}
	loaded := map[string]*Cluster{}
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, ds := l.LoadBytes(filepath.Base(f), src, dir)
			if len(ds) > 0 {
				t.Fatalf("diagnostics: %v", ds)
			}
			loaded[filepath.Base(f)] = c
		})
	}
	y, h := loaded["cluster.yaml"], loaded["cluster.hcl"]
	if y == nil || h == nil {
		t.Fatal("cluster.yaml or cluster.hcl did not load")
	}
	if diff := cmp.Diff(y, h, ignoreLoadMeta()); diff != "" {
		t.Errorf("examples/cluster.yaml and cluster.hcl differ (-yaml +hcl):\n%s", diff)
	}
	if len(y.Hosts) != 4 {
		t.Errorf("cluster.yaml has %d hosts, want 4 (2 inline, 2 from hosts.txt)", len(y.Hosts))
	}
	// A missing referenced file is an error, so the directory above is
	// what makes the examples load.
	src, err := os.ReadFile("../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, ds := l.LoadBytes("cluster.yaml", src, t.TempDir()); !ds.HasErrors() {
		t.Errorf("cluster.yaml loads without the files it references")
	}
}

// TestSSHExplicit records which SSH fields the manifest wrote, so that
// ~/.ssh/config fills only the others.
func TestSSHExplicit(t *testing.T) {
	src := []byte(`name: t
ssh: {user: admin}
database: {host: db, password: {env: HAPLAN_DB_PASSWORD}, admin: {user: root, password: {env: HAPLAN_DB_PASSWORD}}}
loadBalancer: {address: 10.0.0.10, haproxy: {ssh: {identityFile: lb.key}}}
nodes:
  - {name: rs1, address: 10.0.0.11}
  - {name: rs2, address: 10.0.0.12, ssh: {port: 2222}}
  - {name: rs3, address: 10.0.0.13}
`)
	c, ds := testLoader().LoadBytes("c.yaml", src, t.TempDir())
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	got := []SSHFields{c.Nodes[0].SSH.Explicit, c.Nodes[1].SSH.Explicit, c.LoadBalancer.HAProxy.SSH.Explicit}
	want := []SSHFields{SSHUser, SSHUser | SSHPort, SSHUser | SSHIdentityFile}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Explicit (-want +got):\n%s", diff)
	}
	if !want[2].Has(SSHUser) || want[0].Has(SSHPort) || !want[1].Has(SSHUser|SSHPort) {
		t.Errorf("Has is wrong")
	}
	m, ds := testLoader().LoadBytes("m.yaml", mustRead(t, "testdata/good/minimal.yaml"), "testdata/good")
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if e := m.Nodes[0].SSH.Explicit; e != 0 {
		t.Errorf("minimal manifest: Explicit = %b, want none", e)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
