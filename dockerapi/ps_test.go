package dockerapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePS(t *testing.T) {
	in := "rancher-ha-parent\t0.0.0.0:18080->8080/tcp, :::18080->8080/tcp, 0.0.0.0:2181->12181/tcp\n" +
		"rancher-ha\t\n" +
		"web\t0.0.0.0:8000-8001->8000-8001/tcp, 9000/tcp, 0.0.0.0:500->500/udp\n"
	want := []Container{
		{Name: "rancher-ha-parent", Status: "running", Ports: []int{18080, 2181}},
		{Name: "rancher-ha", Status: "running"},
		{Name: "web", Status: "running", Ports: []int{8000, 8001}},
	}
	if diff := cmp.Diff(want, ParsePS(in)); diff != "" {
		t.Errorf("ParsePS (-want +got):\n%s", diff)
	}
}
