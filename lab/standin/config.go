package standin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DBConfig is the Rancher database connection (the CATTLE_DB_CATTLE_* variables).
type DBConfig struct {
	Host     string
	Port     int
	Name     string
	User     string
	Password string
}

// ErrEmbeddedDB reports that no external DB host was given: the real image
// would start its embedded MySQL at localhost, which this stand-in lacks.
var ErrEmbeddedDB = errors.New("CATTLE_DB_CATTLE_MYSQL_HOST is empty: the embedded MySQL (localhost) is not part of this stand-in image; pass an external database")

// DBConfigFromEnv reads the DB variables with cattle.sh's defaults.
func DBConfigFromEnv(getenv func(string) string) (DBConfig, error) {
	c := DBConfig{
		Host:     getenv("CATTLE_DB_CATTLE_MYSQL_HOST"),
		Port:     3306,
		Name:     orDefault(getenv("CATTLE_DB_CATTLE_MYSQL_NAME"), "cattle"),
		User:     orDefault(getenv("CATTLE_DB_CATTLE_USERNAME"), "cattle"),
		Password: orDefault(getenv("CATTLE_DB_CATTLE_PASSWORD"), "cattle"),
	}
	if p := getenv("CATTLE_DB_CATTLE_MYSQL_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return DBConfig{}, fmt.Errorf("CATTLE_DB_CATTLE_MYSQL_PORT=%q: not a port", p)
		}
		c.Port = n
	}
	if c.Host == "" || c.Host == "localhost" {
		return c, ErrEmbeddedDB
	}
	return c, nil
}

// DSN returns the go-sql-driver DSN, as cluster-manager builds it
// (tcp(host:port)/name with collation utf8_general_ci). It holds the
// password: never log it.
func (c DBConfig) DSN() string {
	m := mysql.NewConfig()
	m.User = c.User
	m.Passwd = c.Password
	m.Net = "tcp"
	m.Addr = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	m.DBName = c.Name
	m.Collation = "utf8_general_ci"
	m.Timeout = 5 * time.Second
	m.ReadTimeout = 30 * time.Second
	m.WriteTimeout = 30 * time.Second
	return m.FormatDSN()
}

// String describes the connection without the password.
func (c DBConfig) String() string {
	return fmt.Sprintf("%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.Name)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ParseExports reads a shell file of "export NAME=value" lines (server.conf,
// agent.conf) into m, overriding earlier values as sourcing it would.
// Comments and blank lines are skipped; single or double quotes around a
// value are removed.
func ParseExports(r io.Reader, m map[string]string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "export "))
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		m[name] = unquote(value)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read exports: %w", err)
	}
	return nil
}

// unquote removes shell quoting from one word: single quotes, double quotes
// and backslash escapes, as a POSIX shell would for a simple assignment.
func unquote(v string) string {
	v = strings.TrimSpace(v)
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\'':
			j := strings.IndexByte(v[i+1:], '\'')
			if j < 0 {
				b.WriteString(v[i+1:])
				return b.String()
			}
			b.WriteString(v[i+1 : i+1+j])
			i += j + 1
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("$`\"\\", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		case ' ', '\t':
			return b.String() // the end of the word
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// durationEnv parses a Go duration from getenv(name), or returns def.
func durationEnv(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: not a duration", name, v)
	}
	return d, nil
}
