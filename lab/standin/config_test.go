package standin

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDBConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    DBConfig
		wantErr error
	}{
		{"defaults", map[string]string{"CATTLE_DB_CATTLE_MYSQL_HOST": "10.0.0.3"},
			DBConfig{Host: "10.0.0.3", Port: 3306, Name: "cattle", User: "cattle", Password: "cattle"}, nil},
		{"all set", map[string]string{"CATTLE_DB_CATTLE_MYSQL_HOST": "db", "CATTLE_DB_CATTLE_MYSQL_PORT": "3307",
			"CATTLE_DB_CATTLE_MYSQL_NAME": "n", "CATTLE_DB_CATTLE_USERNAME": "u", "CATTLE_DB_CATTLE_PASSWORD": "secret-pw"},
			DBConfig{Host: "db", Port: 3307, Name: "n", User: "u", Password: "secret-pw"}, nil},
		{"embedded", map[string]string{}, DBConfig{}, ErrEmbeddedDB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DBConfigFromEnv(func(k string) string { return tt.env[k] })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if got.Password != "cattle" && strings.Contains(got.String(), got.Password) {
					t.Errorf("String() leaks the password: %s", got)
				}
			}
		})
	}
	if _, err := DBConfigFromEnv(func(k string) string {
		return map[string]string{"CATTLE_DB_CATTLE_MYSQL_HOST": "db", "CATTLE_DB_CATTLE_MYSQL_PORT": "x"}[k]
	}); err == nil {
		t.Error("bad port accepted")
	}
}

func TestParseExports(t *testing.T) {
	in := `# comment
export A=1
export B='x y'
export C="q\"d"
D=plain
export E='it'\''s'
# export F=commented
export A=2
garbage line
`
	got := map[string]string{}
	if err := ParseExports(strings.NewReader(in), got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "2", "B": "x y", "C": `q"d`, "D": "plain", "E": "it's"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// As `source` would: an unquoted blank ends the value (the rest are
	// other words of the export line).
	got = map[string]string{}
	if err := ParseExports(strings.NewReader("export N=my db\nexport U=a'b c'd e\n"), got); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"N": "my", "U": "ab cd"}; !cmp.Equal(want, got) {
		t.Errorf("unquoted blanks: got %v, want %v", got, want)
	}
}

func TestDefaultRouteIP(t *testing.T) {
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	ips := func(name string) string { return map[string]string{"eth0": "10.213.1.1", "eth1": "172.17.0.2"}[name] }
	tests := []struct {
		name, table, want string
	}{
		{"default via eth0", header + "eth1\t0011A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t00000000\t0101D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", "10.213.1.1"},
		{"no gateway", header + "eth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultRouteIP(tt.table, ips); got != tt.want {
				t.Errorf("defaultRouteIP = %q, want %q", got, tt.want)
			}
		})
	}
}
