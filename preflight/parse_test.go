package preflight

import (
	"github.com/haplan/haplan/dockerapi"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ssLab is `ss -Htlnp` on a lab node before anything was installed.
const ssLab = `LISTEN 0      4096   127.0.0.11:33281 0.0.0.0:*                             
LISTEN 0      128       0.0.0.0:22    0.0.0.0:* users:(("sshd",pid=12,fd=4))
LISTEN 0      128          [::]:22       [::]:* users:(("sshd",pid=12,fd=5))
`

// ssBusy is `ss -Htlnp` on a host running nginx, a published container and
// systemd-resolved.
const ssBusy = `LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:(("nginx",pid=1234,fd=6),("nginx",pid=1233,fd=6))
LISTEN 0      4096         0.0.0.0:18080     0.0.0.0:*    users:(("docker-proxy",pid=4242,fd=4))
LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=600,fd=14))
LISTEN 0      4096               *:6379            *:*    users:(("redis-server",pid=77,fd=7))
UNCONN 0      0            0.0.0.0:500       0.0.0.0:*
garbage line
`

func TestParseSS(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []listener
	}{
		{"lab node", ssLab, []listener{
			{Addr: "127.0.0.11", Port: 33281},
			{Addr: "0.0.0.0", Port: 22, Process: "sshd", PID: 12},
			{Addr: "[::]", Port: 22, Process: "sshd", PID: 12},
		}},
		{"busy host", ssBusy, []listener{
			{Addr: "0.0.0.0", Port: 80, Process: "nginx", PID: 1234},
			{Addr: "0.0.0.0", Port: 18080, Process: "docker-proxy", PID: 4242},
			{Addr: "127.0.0.53%lo", Port: 53, Process: "systemd-resolve", PID: 600},
			{Addr: "*", Port: 6379, Process: "redis-server", PID: 77},
		}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseSS(tt.in)); diff != "" {
				t.Errorf("parseSS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcNetTCP(t *testing.T) {
	in := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 100 0 0 10 0
   2: 0B01D50A:0016 0101D50A:C350 01 00000000:00000000 02:00000000 00000000     0        0 1236 4 0000000000000000 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:46A0 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
`
	want := []listener{
		{Addr: "00000000", Port: 22},
		{Addr: "0100007F", Port: 8080},
		{Addr: "00000000000000000000000000000000", Port: 18080},
	}
	if diff := cmp.Diff(want, parseProcNetTCP(in)); diff != "" {
		t.Errorf("parseProcNetTCP (-want +got):\n%s", diff)
	}
}

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"lab", "MemTotal:       24684092 kB\nMemFree:         1000 kB\n", 24684092 * 1024, false},
		{"second line", "Foo: 1 kB\nMemTotal: 2048 kB\n", 2048 * 1024, false},
		{"missing", "MemFree: 1 kB\n", 0, true},
		{"garbage number", "MemTotal: lots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemTotal(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseMemTotal = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name          string
		sent, recv    time.Duration // after base
		remote        string
		wantSkew      time.Duration
		wantUncertain time.Duration
	}{
		{"in sync, 200ms round trip", 0, 200 * time.Millisecond, "1700000000.100000000", 0, 100 * time.Millisecond},
		{"3s ahead", 0, 200 * time.Millisecond, "1700000003.100000000", 3 * time.Second, 100 * time.Millisecond},
		{"5s behind", 0, 0, "1699999995.000000000", -5 * time.Second, 0},
		{"short fraction", 0, 0, "1700000000.5", 500 * time.Millisecond, 0},
		{"busybox, no %N", 0, 0, "1700000000.N", 500 * time.Millisecond, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote, precise, err := parseEpoch(tt.remote)
			if err != nil {
				t.Fatal(err)
			}
			skew, unc := clockSkew(base.Add(tt.sent), base.Add(tt.recv), remote, precise)
			if skew != tt.wantSkew || unc != tt.wantUncertain {
				t.Errorf("clockSkew = %v ±%v, want %v ±%v", skew, unc, tt.wantSkew, tt.wantUncertain)
			}
		})
	}
	if _, _, err := parseEpoch("date: invalid"); err == nil {
		t.Error("parseEpoch accepted garbage")
	}
}

func TestEvalClock(t *testing.T) {
	tests := []struct {
		skew time.Duration
		want Severity
	}{
		{0, OK}, {2 * time.Second, OK}, {2*time.Second + time.Millisecond, Warning}, {-3 * time.Second, Warning},
	}
	for _, tt := range tests {
		if got := evalClock("rs1", tt.skew, 0).Severity; got != tt.want {
			t.Errorf("evalClock(%v) = %v, want %v", tt.skew, got, tt.want)
		}
	}
	f, ok := evalClockSpread(map[string]time.Duration{"rs1": -1500 * time.Millisecond, "rs2": 0, "rs3": 1500 * time.Millisecond})
	if !ok || f.Severity != Warning || f.Message != "the nodes' clocks differ by 3s (rs3 ahead of rs1)" {
		t.Errorf("evalClockSpread = %+v, %v", f, ok)
	}
	if _, ok := evalClockSpread(map[string]time.Duration{"rs1": 0, "rs2": time.Second}); ok {
		t.Error("evalClockSpread warned about a 1s spread")
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		in       string
		want     []int
		wantOld  bool
		wantRead bool
	}{
		{"1.10.3", []int{1, 10, 3}, false, true},
		{"1.10.2", []int{1, 10, 2}, true, true},
		{"1.9.1", []int{1, 9, 1}, true, true},
		{"1.10", []int{1, 10}, true, true},
		{"17.03.2-ce", []int{17, 3, 2}, false, true},
		{"20.10.24+dfsg1", []int{20, 10, 24}, false, true},
		{"v1.12.0", []int{1, 12, 0}, false, true},
		{"", nil, false, false},
		{"unknown", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseVersion(tt.in)
			if ok != tt.wantRead {
				t.Fatalf("parseVersion ok = %v, want %v", ok, tt.wantRead)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseVersion (-want +got):\n%s", diff)
			}
			if ok && versionLess(got, minDocker()) != tt.wantOld {
				t.Errorf("versionLess(%v, 1.10.3) = %v, want %v", got, !tt.wantOld, tt.wantOld)
			}
		})
	}
}

func TestEvalDocker(t *testing.T) {
	got := evalDocker("rs1", dockerapi.EngineVersion{Version: "1.9.1\n"})
	want := []Finding{
		{Severity: Info, Check: "docker", Host: "rs1", Message: "Docker 1.9.1"},
		{Severity: Warning, Check: "docker", Host: "rs1",
			Message: "Docker 1.9.1 is older than 1.10.3, the oldest Docker Rancher v1.0.1 supports",
			Hint:    "upgrade Docker to 1.10.3 or later"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("evalDocker (-want +got):\n%s", diff)
	}
}

// cluster-manager v0.1.4 pins Engine API 1.22; Docker 25 raised the
// default floor to 1.24 (moby#46887), Docker 26 removed the older ones.
func TestEvalDockerAPIFloor(t *testing.T) {
	tests := []struct {
		name      string
		ev        dockerapi.EngineVersion
		wantError bool
	}{
		{"docker 20.10", dockerapi.EngineVersion{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12"}, false},
		{"docker 1.10 (no MinAPIVersion)", dockerapi.EngineVersion{Version: "1.10.3", APIVersion: "1.22"}, false},
		{"docker 25 lowered", dockerapi.EngineVersion{Version: "25.0.5", APIVersion: "1.44", MinAPIVersion: "1.22"}, false},
		{"docker 25 default", dockerapi.EngineVersion{Version: "25.0.5", APIVersion: "1.44", MinAPIVersion: "1.24"}, true},
		{"docker 29", dockerapi.EngineVersion{Version: "29.0.0", APIVersion: "1.52", MinAPIVersion: "1.44"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs []Finding
			for _, f := range evalDocker("rs1", tt.ev) {
				if f.Severity == Error {
					errs = append(errs, f)
				}
			}
			if (len(errs) > 0) != tt.wantError {
				t.Fatalf("errors %v, want an error: %t", errs, tt.wantError)
			}
			if tt.wantError && (!strings.Contains(errs[0].Message, "API "+tt.ev.MinAPIVersion) || !strings.Contains(errs[0].Hint, "DOCKER_MIN_API_VERSION")) {
				t.Errorf("finding %+v does not explain the floor and the way out", errs[0])
			}
		})
	}
}

func TestEvalMaxConnections(t *testing.T) {
	tests := []struct {
		current, nodes int
		want           Finding
	}{
		{151, 3, Finding{Severity: OK, Check: "max_connections", Host: "db",
			Message: "max_connections is 151; 3 node(s) need at least 150"}},
		{151, 5, Finding{Severity: Error, Check: "max_connections", Host: "db",
			Message: "max_connections is 151; 5 nodes need at least 250 (50 per node)",
			Hint:    "SET GLOBAL max_connections = 250 and persist it in my.cnf"}},
		{250, 5, Finding{Severity: OK, Check: "max_connections", Host: "db",
			Message: "max_connections is 250; 5 node(s) need at least 250"}},
		{10, 1, Finding{Severity: Error, Check: "max_connections", Host: "db",
			Message: "max_connections is 10; 1 nodes need at least 50 (50 per node)",
			Hint:    "SET GLOBAL max_connections = 50 and persist it in my.cnf"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, evalMaxConnections(tt.current, tt.nodes)); diff != "" {
			t.Errorf("evalMaxConnections(%d, %d) (-want +got):\n%s", tt.current, tt.nodes, diff)
		}
	}
}

func TestEvalMemory(t *testing.T) {
	tests := []struct {
		name string
		kB   uint64
		want Severity
	}{
		{"512 MB", 512 << 10, Warning},
		{"2 GB", 2 << 20, Warning},
		{"4 GB machine minus kernel", 3_900_000, Info},
		{"8 GB machine minus kernel", 7_900_000, OK},
		{"lab", 24684092, OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evalMemory("rs1", tt.kB*1024); got.Severity != tt.want {
				t.Errorf("evalMemory = %+v, want severity %v", got, tt.want)
			}
		})
	}
}

func TestEvalSize(t *testing.T) {
	for n, want := range map[int]Severity{0: Error, 1: OK, 2: Error, 3: OK, 4: Error, 5: OK, 7: Error} {
		if got := evalSize(n).Severity; got != want {
			t.Errorf("evalSize(%d) = %v, want %v", n, got, want)
		}
	}
}
