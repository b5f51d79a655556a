package resources

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/haplan/haplan/redact"
)

func TestDBError(t *testing.T) {
	red := redact.New("s3cret-pw")
	tests := []struct {
		name string
		err  *DBError
		want string
	}{
		{"connect", &DBError{Addr: "10.0.0.20:3306", User: "root", Err: errors.New("dial tcp: i/o timeout"), red: red},
			`database 10.0.0.20:3306 as "root" (database.admin): dial tcp: i/o timeout`},
		{"statement on a lost connection", &DBError{Addr: "10.0.0.20:3306", User: "root", Op: "CREATE USER for 'cattle'@'10.0.0.11'", Err: mysql.ErrInvalidConn, red: red},
			`database 10.0.0.20:3306: CREATE USER for 'cattle'@'10.0.0.11': invalid connection (the connection to the database server was lost)`},
		{"secret in the driver's text", &DBError{Addr: "db:3306", User: "root", Op: "ALTER USER", Err: fmt.Errorf("syntax error near 's3cret-pw'"), red: red},
			`database db:3306: ALTER USER: syntax error near '(sensitive)'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q\nwant      %q", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Err) {
				t.Error("the driver's error is not wrapped")
			}
			if strings.Contains(tt.err.Error(), "s3cret-pw") {
				t.Error("secret not redacted")
			}
		})
	}
}
