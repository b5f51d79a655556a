package standin

import (
	"fmt"
	"sort"
	"strings"
)

// Member is one row of the cluster table.
type Member struct {
	ID             int64
	Name           string
	Heartbeat      int64
	UUID           string
	IP             string
	RequestedIndex int
	AssignedIndex  int
	Ports          string
}

// staleLoops is how many loops a counter may stay unchanged before the
// member is forgotten (cluster-manager: 2 loops of 5 s).
const staleLoops = 2

// Tracker turns successive snapshots of the cluster table into liveness.
// Membership uses counters, not timestamps, so clock skew cannot matter.
// A Tracker is owned by one goroutine.
type Tracker struct {
	self int64
	seen map[int64]observation
}

type observation struct {
	heartbeat int64
	unchanged int
	confirmed bool // the counter moved at least once while we watched
}

// View is what one loop concluded.
type View struct {
	// Live members: self, and every member whose counter moved while
	// observed and has not been unchanged for staleLoops loops.
	Live []Member
	// Pending members were seen but have not moved yet (just started, or
	// long dead): they take part in the election but are not hosts.
	Pending []Member
	// Dead members: unchanged for staleLoops loops; the master deletes them.
	Dead []Member
}

// NewTracker returns a tracker for the member with id self.
func NewTracker(self int64) *Tracker {
	return &Tracker{self: self, seen: map[int64]observation{}}
}

// SetSelf changes the tracked own id (after re-registering).
func (t *Tracker) SetSelf(id int64) { t.self = id }

// Observe records one snapshot of the table and classifies every row.
func (t *Tracker) Observe(rows []Member) View {
	var v View
	next := make(map[int64]observation, len(rows))
	for _, m := range rows {
		o, known := t.seen[m.ID]
		switch {
		case !known:
			o = observation{heartbeat: m.Heartbeat}
		case m.Heartbeat != o.heartbeat:
			o = observation{heartbeat: m.Heartbeat, confirmed: true}
		default:
			o.unchanged++
		}
		next[m.ID] = o
		switch {
		case m.ID == t.self:
			v.Live = append(v.Live, m)
		case o.unchanged >= staleLoops:
			v.Dead = append(v.Dead, m)
		case o.confirmed:
			v.Live = append(v.Live, m)
		default:
			v.Pending = append(v.Pending, m)
		}
	}
	t.seen = next
	return v
}

// Master returns the id of the master: the lowest id that is not dead.
func (v View) Master() int64 {
	var best int64
	for _, ms := range [][]Member{v.Live, v.Pending} {
		for _, m := range ms {
			if best == 0 || m.ID < best {
				best = m.ID
			}
		}
	}
	return best
}

// AssignIndexes gives live members indexes 1..size in id order. A member
// keeps a valid index it already has; the others get the lowest free one;
// members beyond size get 0. It returns the new index of every live member.
func AssignIndexes(live []Member, size int) map[int64]int {
	ms := append([]Member(nil), live...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	out := make(map[int64]int, len(ms))
	used := map[int]bool{}
	for _, m := range ms {
		if m.AssignedIndex >= 1 && m.AssignedIndex <= size && !used[m.AssignedIndex] {
			out[m.ID] = m.AssignedIndex
			used[m.AssignedIndex] = true
		}
	}
	next := 1
	for _, m := range ms {
		if _, ok := out[m.ID]; ok {
			continue
		}
		for next <= size && used[next] {
			next++
		}
		if next > size {
			out[m.ID] = 0
			continue
		}
		out[m.ID] = next
		used[next] = true
	}
	return out
}

// describeMembers renders members as cluster-manager logs them: the IPs in
// index order.
func describeMembers(live []Member, idx map[int64]int) string {
	ms := append([]Member(nil), live...)
	sort.Slice(ms, func(i, j int) bool {
		a, b := idx[ms[i].ID], idx[ms[j].ID]
		if a != b {
			return a < b
		}
		return ms[i].ID < ms[j].ID
	})
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.IP
	}
	return fmt.Sprintf("[%s]", strings.Join(parts, ", "))
}
