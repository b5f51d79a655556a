package manifests

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const committedSchema = "../schema/cluster.schema.json"

func TestSchemaCommittedCopy(t *testing.T) {
	got := Schema()
	if os.Getenv("HAPLAN_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(committedSchema, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale; run HAPLAN_UPDATE_GOLDEN=1 go test ./manifests (-committed +Schema()):\n%s", committedSchema, diff)
	}
}

func decodeSchema(t *testing.T) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("Schema() is not JSON: %v", err)
	}
	return s
}

// schemaAt follows a slash-separated JSON pointer and any $ref it ends on.
func schemaAt(t *testing.T, root map[string]any, pointer string) map[string]any {
	t.Helper()
	cur := root
	if pointer != "" {
		for _, p := range strings.Split(pointer, "/") {
			next, ok := cur[p].(map[string]any)
			if !ok {
				t.Fatalf("schema has no %q in %s", p, pointer)
			}
			cur = next
		}
	}
	return resolveRef(t, root, cur)
}

func resolveRef(t *testing.T, root, s map[string]any) map[string]any {
	t.Helper()
	if r, ok := s["$ref"].(string); ok {
		return schemaAt(t, root, strings.TrimPrefix(r, "#/"))
	}
	return s
}

func propertyNames(s map[string]any) []string {
	props, _ := s["properties"].(map[string]any)
	var out []string
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSchemaMatchesLoaderKeys proves the keys the decoder accepts (it
// refuses any key not in objectKeys) are exactly the schema's properties.
func TestSchemaMatchesLoaderKeys(t *testing.T) {
	root := decodeSchema(t)
	pointers := map[string]string{
		"cluster":      "",
		"rancher":      "properties/rancher",
		"certificate":  "properties/rancher/properties/certificate",
		"apiKey":       "properties/rancher/properties/apiKey",
		"timeouts":     "properties/rancher/properties/timeouts",
		"ssh":          "properties/ssh",
		"database":     "properties/database",
		"admin":        "properties/database/properties/admin",
		"loadBalancer": "properties/loadBalancer",
		"haproxy":      "properties/loadBalancer/properties/haproxy",
		"node":         "properties/nodes/items",
		"host":         "properties/hosts/items",
		"hostDefaults": "properties/hostDefaults",
		"secret":       "properties/database/properties/password",
	}
	for _, kind := range objectKinds() {
		t.Run(kind, func(t *testing.T) {
			ptr, ok := pointers[kind]
			if !ok {
				t.Fatalf("no schema location for object kind %q", kind)
			}
			s := schemaAt(t, root, ptr)
			if s["additionalProperties"] != false {
				t.Errorf("schema for %s allows additional properties", kind)
			}
			want := append([]string(nil), objectKeys(kind)...)
			sort.Strings(want)
			if diff := cmp.Diff(want, propertyNames(s)); diff != "" {
				t.Errorf("loader keys vs schema properties for %s (-loader +schema):\n%s", kind, diff)
			}
		})
	}
}

// TestExampleKeysInSchema walks examples/cluster.yaml alongside the schema.
func TestExampleKeysInSchema(t *testing.T) {
	src, err := os.ReadFile("../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tree, ds := parseYAML("cluster.yaml", src)
	if ds.HasErrors() {
		t.Fatalf("example does not parse: %v", ds)
	}
	root := decodeSchema(t)
	seen := 0
	var walk func(n *node, s map[string]any, path string)
	walk = func(n *node, s map[string]any, path string) {
		s = resolveRef(t, root, s)
		switch n.kind {
		case kindMap:
			props, _ := s["properties"].(map[string]any)
			if _, free := s["additionalProperties"].(map[string]any); free && props == nil {
				seen += len(n.entries) // a map of free keys (labels)
				return
			}
			for _, e := range n.entries {
				sub, ok := props[e.key].(map[string]any)
				if !ok {
					t.Errorf("%s: key %q of examples/cluster.yaml is not in the schema", path, e.key)
					continue
				}
				seen++
				walk(e.val, sub, join(path, e.key))
			}
		case kindSeq:
			items, _ := s["items"].(map[string]any)
			for i, it := range n.items {
				walk(it, items, index(path, i))
			}
		}
	}
	walk(tree, root, "")
	if seen < 40 {
		t.Errorf("walked only %d keys of the example", seen)
	}
}
