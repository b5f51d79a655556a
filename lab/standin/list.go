package standin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Lists as gdapi's ParseCollectionAttributes (cattle v0.159.7
// code/framework/java-server/.../request/handler/ParseCollectionAttributes.java)
// reads them: a parameter filters only when it names both a collection
// filter and a resource field of the type (name, name_ne, name_null,
// name_notnull); anything else, hostname for hosts say, is ignored. Pages
// hold limit resources (default 100, at most 10000, <= 0 for all); a
// partial page links the next one with marker=m<offset>
// (AbstractJooqResourceManager.addLimit/getOffset).
const (
	defaultListLimit = 100
	maxListLimit     = 10000
)

// The filters of the types the stand-in lists: the schemas' collection
// filters that are also fields a project can read (host and
// registrationToken in cattle v0.159.7's schemas, as go-rancher's
// schemas.json of that time records them).
var (
	hostFilters  = []string{"accountId", "agentId", "computeTotal", "created", "description", "id", "kind", "name", "physicalHostId", "removeTime", "removed", "state", "uuid"}
	tokenFilters = []string{"accountId", "created", "description", "id", "kind", "name", "removeTime", "removed", "state", "uuid"}
)

type condition struct {
	Modifier string `json:"modifier"`
	Value    any    `json:"value"`
}

// pagination is gdapi's Pagination as the collection renders it.
type pagination struct {
	First    *string `json:"first"`
	Previous *string `json:"previous"`
	Next     *string `json:"next"`
	Limit    *int    `json:"limit"`
	Total    *int64  `json:"total"`
	Partial  bool    `json:"partial"`
}

// writeList filters and pages items (resources that marshal to JSON
// objects) and writes them as a collection at linkBase(r)+path.
func (a *API) writeList(w http.ResponseWriter, r *http.Request, resourceType, path string, items []any, filters []string, createTypes map[string]string) {
	q := r.URL.Query()
	conds := map[string][]condition{}
	for name, vals := range q {
		field, mod := name, "eq"
		if i := strings.LastIndex(name, "_"); i > 0 {
			switch m := name[i+1:]; m {
			case "ne", "null", "notnull":
				field, mod = name[:i], m
			}
		}
		if !slices.Contains(filters, field) {
			continue
		}
		for _, v := range vals {
			conds[field] = append(conds[field], condition{Modifier: mod, Value: v})
		}
	}
	var kept []any
	for _, it := range items {
		m, err := toMap(it)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		if matches(m, conds) {
			kept = append(kept, it)
		}
	}
	if kept == nil {
		kept = []any{}
	}

	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			limit = min(n, maxListLimit)
		}
	}
	offset := 0
	if m := q.Get("marker"); strings.HasPrefix(m, "m") {
		if n, err := strconv.Atoi(m[1:]); err == nil && n > 0 {
			offset = n
		}
	}
	page := pagination{}
	if offset > len(kept) {
		offset = len(kept)
	}
	kept = kept[offset:]
	if limit > 0 {
		page.Limit = &limit
		if len(kept) > limit {
			kept = kept[:limit]
			page.Partial = true
			next := nextURL(r, linkBase(r)+path, offset+limit)
			page.Next = &next
		}
	}
	fs := map[string]any{}
	for _, f := range filters {
		fs[f] = nil
	}
	for f, cs := range conds {
		fs[f] = cs
	}
	c := a.collectionAt(r, resourceType, linkBase(r)+path, kept)
	c["pagination"] = page
	c["filters"] = fs
	if createTypes != nil {
		c["createTypes"] = createTypes
	}
	a.writeJSON(w, http.StatusOK, c)
}

func nextURL(r *http.Request, self string, offset int) string {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q[k] = v
	}
	q.Set("marker", "m"+strconv.Itoa(offset))
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	return self + "?" + strings.Join(parts, "&")
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func matches(m map[string]any, conds map[string][]condition) bool {
	for field, cs := range conds {
		v, present := m[field]
		isNull := !present || v == nil
		s := ""
		if !isNull {
			s = fmt.Sprint(v)
		}
		// Several values of one filter are alternatives; the other
		// modifiers must all hold.
		eq, eqOK := false, true
		for _, c := range cs {
			want := fmt.Sprint(c.Value)
			switch c.Modifier {
			case "eq":
				eqOK = false
				eq = eq || (!isNull && s == want)
			case "ne":
				if !isNull && s == want {
					return false
				}
			case "null":
				if !isNull {
					return false
				}
			case "notnull":
				if isNull {
					return false
				}
			}
		}
		if !eqOK && !eq {
			return false
		}
	}
	return true
}
