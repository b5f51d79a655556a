package standin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ids(ms []Member) []int64 {
	out := []int64{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestTracker(t *testing.T) {
	type loop struct {
		beats               map[int64]int64 // id -> counter in this snapshot
		live, pending, dead []int64
		master              int64
	}
	tests := []struct {
		name  string
		self  int64
		loops []loop
	}{
		{name: "peers confirm after moving", self: 2, loops: []loop{
			{beats: map[int64]int64{1: 5, 2: 0, 3: 9}, live: []int64{2}, pending: []int64{1, 3}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 6, 2: 1, 3: 10}, live: []int64{1, 2, 3}, pending: []int64{}, dead: []int64{}, master: 1},
		}},
		{name: "stale member forgotten after two loops", self: 2, loops: []loop{
			{beats: map[int64]int64{1: 5, 2: 0}, live: []int64{2}, pending: []int64{1}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 5, 2: 1}, live: []int64{2}, pending: []int64{1}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 5, 2: 2}, live: []int64{2}, pending: []int64{}, dead: []int64{1}, master: 2},
		}},
		{name: "live member dies", self: 1, loops: []loop{
			{beats: map[int64]int64{1: 0, 2: 3}, live: []int64{1}, pending: []int64{2}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 1, 2: 4}, live: []int64{1, 2}, pending: []int64{}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 2, 2: 4}, live: []int64{1, 2}, pending: []int64{}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 3, 2: 4}, live: []int64{1}, pending: []int64{}, dead: []int64{2}, master: 1},
		}},
		{name: "one missed beat is tolerated", self: 1, loops: []loop{
			{beats: map[int64]int64{1: 0, 2: 3}, live: []int64{1}, pending: []int64{2}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 1, 2: 4}, live: []int64{1, 2}, pending: []int64{}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 2, 2: 4}, live: []int64{1, 2}, pending: []int64{}, dead: []int64{}, master: 1},
			{beats: map[int64]int64{1: 3, 2: 6}, live: []int64{1, 2}, pending: []int64{}, dead: []int64{}, master: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.self)
			for i, l := range tt.loops {
				var rows []Member
				for id := int64(1); id <= 9; id++ {
					if hb, ok := l.beats[id]; ok {
						rows = append(rows, Member{ID: id, Heartbeat: hb})
					}
				}
				v := tr.Observe(rows)
				got := []any{ids(v.Live), ids(v.Pending), ids(v.Dead), v.Master()}
				want := []any{l.live, l.pending, l.dead, l.master}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("loop %d [live pending dead master] (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestAssignIndexes(t *testing.T) {
	tests := []struct {
		name string
		live []Member
		size int
		want map[int64]int
	}{
		{"fresh", []Member{{ID: 4}, {ID: 2}, {ID: 9}}, 3, map[int64]int{2: 1, 4: 2, 9: 3}},
		{"keeps valid", []Member{{ID: 2, AssignedIndex: 3}, {ID: 4}, {ID: 9, AssignedIndex: 1}}, 3, map[int64]int{2: 3, 4: 2, 9: 1}},
		{"duplicate and out of range", []Member{{ID: 2, AssignedIndex: 1}, {ID: 4, AssignedIndex: 1}, {ID: 9, AssignedIndex: 7}}, 3, map[int64]int{2: 1, 4: 2, 9: 3}},
		{"too many", []Member{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}}, 3, map[int64]int{1: 1, 2: 2, 3: 3, 4: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, AssignIndexes(tt.live, tt.size)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDescribeMembers(t *testing.T) {
	want := []Member{{ID: 5, Name: "rs1", IP: "b"}, {ID: 7, Name: "rs2", IP: "c"}}
	if d := describeMembers(want, map[int64]int{5: 2, 7: 1}); d != "[c, b]" {
		t.Errorf("describeMembers = %q", d)
	}
}
