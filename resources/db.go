package resources

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/haplan/haplan/engine"
	"github.com/haplan/haplan/plans"
)

// connectionsPerNode is upstream's requirement: 50 MySQL connections for
// every Rancher server node.
const connectionsPerNode = 50

// dbDatabase is the Rancher database, created utf8 / utf8_general_ci as the
// upstream docs do it.
type dbDatabase struct{ base }

var _ engine.Step = (*dbDatabase)(nil)

type dbDatabaseState struct {
	Exists         bool   `json:"exists"`
	Charset        string `json:"charset,omitempty"`
	Collation      string `json:"collation,omitempty"`
	MaxConnections int    `json:"max_connections"`
}

func (s *dbDatabase) Probe(ctx context.Context) (engine.State, error) {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	var st dbDatabaseState
	err = db.QueryRowContext(ctx,
		`SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`,
		s.env.c.Database.Name).Scan(&st.Charset, &st.Collation)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, s.env.dbError(fmt.Sprintf("look up database %q", s.env.c.Database.Name), err)
	default:
		st.Exists = true
	}
	if err := db.QueryRowContext(ctx, `SELECT @@max_connections`).Scan(&st.MaxConnections); err != nil {
		return nil, s.env.dbError("read max_connections", err)
	}
	return st, nil
}

func (s *dbDatabase) Diff(cur engine.State) plans.Change {
	st := cur.(dbDatabaseState)
	name := s.env.c.Database.Name
	var c plans.Change
	if !st.Exists {
		c = s.change(plans.Create, fmt.Sprintf("database %q does not exist", name),
			plans.Detail{Name: "charset", New: "utf8"}, plans.Detail{Name: "collation", New: "utf8_general_ci"})
	} else {
		c = s.change(plans.NoOp, fmt.Sprintf("database %q exists", name))
		if !strings.HasPrefix(st.Charset, "utf8") {
			c.Warnings = append(c.Warnings, fmt.Sprintf("database %q uses character set %s; Rancher expects utf8 (haplan does not convert an existing database)", name, st.Charset))
		}
	}
	if need := connectionsPerNode * len(s.env.c.Nodes); st.MaxConnections < need {
		c.Warnings = append(c.Warnings, fmt.Sprintf("max_connections is %d; %d nodes need at least %d (50 per node)", st.MaxConnections, len(s.env.c.Nodes), need))
	}
	return c
}

func (s *dbDatabase) Apply(ctx context.Context, _ plans.Change) error {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return err
	}
	q := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8 COLLATE utf8_general_ci", quoteIdent(s.env.c.Database.Name))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return s.env.dbError(fmt.Sprintf("create database %q", s.env.c.Database.Name), err)
	}
	return nil
}

// dbGrant is the application user at one grant host with ALL on the
// database. The password is compared through its mysql_native_password
// hash, so the plan knows when it changed without ever holding it.
type dbGrant struct {
	base
	grantHost string
}

var _ engine.Step = (*dbGrant)(nil)

type dbGrantState struct {
	UserExists    bool   `json:"user_exists"`
	Plugin        string `json:"plugin,omitempty"`
	PasswordMatch bool   `json:"password_match"`
	PasswordKnown bool   `json:"password_known"` // false when the hash cannot be compared (e.g. caching_sha2)
	HasGrant      bool   `json:"has_grant"`
}

func (s *dbGrant) Probe(ctx context.Context) (engine.State, error) {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	d := s.env.c.Database
	var st dbGrantState
	var plugin, auth sql.NullString
	err = db.QueryRowContext(ctx, `SELECT plugin, authentication_string FROM mysql.user WHERE User = ? AND Host = ?`,
		d.User, s.grantHost).Scan(&plugin, &auth)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, nil
	case err != nil:
		return nil, s.env.dbError(fmt.Sprintf("look up user %q@%q", d.User, s.grantHost), err)
	}
	st.UserExists = true
	st.Plugin = plugin.String
	if st.Plugin == "" || st.Plugin == "mysql_native_password" {
		st.PasswordKnown = true
		st.PasswordMatch = strings.EqualFold(auth.String, nativePasswordHash(s.env.dbPW.Reveal()))
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SHOW GRANTS FOR %s@%s", quoteString(d.User), quoteString(s.grantHost)))
	if err != nil {
		return nil, s.env.dbError(fmt.Sprintf("show grants for %q@%q", d.User, s.grantHost), err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, s.env.dbError(fmt.Sprintf("show grants for %q@%q", d.User, s.grantHost), err)
		}
		if grantsAllOn(g, d.Name) {
			st.HasGrant = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.env.dbError(fmt.Sprintf("show grants for %q@%q", d.User, s.grantHost), err)
	}
	return st, nil
}

// grantsAllOn reports whether a SHOW GRANTS line gives ALL on db.*.
func grantsAllOn(line, db string) bool {
	u := strings.ToUpper(line)
	if !strings.HasPrefix(u, "GRANT ALL PRIVILEGES ON ") {
		return false
	}
	rest := line[len("GRANT ALL PRIVILEGES ON "):]
	return strings.HasPrefix(rest, "`"+strings.ReplaceAll(db, "`", "``")+"`.*") || strings.HasPrefix(rest, "*.*")
}

func (s *dbGrant) Diff(cur engine.State) plans.Change {
	st := cur.(dbGrantState)
	d := s.env.c.Database
	who := fmt.Sprintf("%s@%s", d.User, s.grantHost)
	if !st.UserExists {
		return s.change(plans.Create, fmt.Sprintf("user %s does not exist", who),
			plans.Detail{Name: "password", New: "(sensitive)", Sensitive: true},
			plans.Detail{Name: "grant", New: "ALL ON " + d.Name + ".*"})
	}
	var details []plans.Detail
	var why []string
	if st.PasswordKnown && !st.PasswordMatch {
		details = append(details, plans.Detail{Name: "password", Old: "(sensitive)", New: "(sensitive value changed)", Sensitive: true})
		why = append(why, "password differs")
	}
	if !st.HasGrant {
		details = append(details, plans.Detail{Name: "grant", New: "ALL ON " + d.Name + ".*"})
		why = append(why, "missing ALL on "+d.Name+".*")
	}
	if len(why) == 0 {
		c := s.change(plans.NoOp, fmt.Sprintf("user %s has ALL on %s.*", who, d.Name))
		if !st.PasswordKnown {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cannot compare the password of %s (auth plugin %s)", who, st.Plugin))
		}
		return c
	}
	return s.change(plans.Update, who+": "+strings.Join(why, ", "), details...)
}

func (s *dbGrant) Apply(ctx context.Context, c plans.Change) error {
	db, err := s.env.adminDB(ctx)
	if err != nil {
		return err
	}
	d := s.env.c.Database
	acct := quoteString(d.User) + "@" + quoteString(s.grantHost)
	ident, secret, err := identifiedBy(ctx, db, s.env.dbPW.Reveal())
	if err != nil {
		return s.env.dbError("prepare the grant", err)
	}
	// Statements are interpolated client-side (InterpolateParams), so the
	// secret travels as a bound value and never shows in an error or a log.
	stmts := []struct {
		q    string
		args []any
	}{
		{"CREATE USER IF NOT EXISTS " + acct + " " + ident, []any{secret}},
		{"ALTER USER " + acct + " " + ident, []any{secret}},
		{"GRANT ALL ON " + quoteIdent(d.Name) + ".* TO " + acct, nil},
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st.q, st.args...); err != nil {
			verb := strings.SplitN(st.q, " ", 3)
			return s.env.dbError(fmt.Sprintf("%s %s for %s", verb[0], verb[1], acct), err)
		}
	}
	return nil
}

// identifiedBy returns the IDENTIFIED clause for the server and the value
// to bind to it. Where the server takes a mysql_native_password hash
// (MariaDB, MySQL before 8.4), haplan sends the hash, so the password itself
// never appears in the server's process list or statement logs.
func identifiedBy(ctx context.Context, db *sql.DB, pw string) (clause, value string, err error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", "", fmt.Errorf("read the server version: %w", err)
	}
	switch serverFlavor(version) {
	case flavorMariaDB:
		return "IDENTIFIED BY PASSWORD ?", nativePasswordHash(pw), nil
	case flavorMySQLNative:
		return "IDENTIFIED WITH mysql_native_password AS ?", nativePasswordHash(pw), nil
	}
	return "IDENTIFIED BY ?", pw, nil
}

type flavor int

const (
	flavorMySQLOther  flavor = iota // MySQL 8.4+: no native-password hashes
	flavorMariaDB                   // IDENTIFIED BY PASSWORD '*hash'
	flavorMySQLNative               // MySQL 5.7-8.3: IDENTIFIED WITH mysql_native_password AS '*hash'
)

// serverFlavor classifies a VERSION() string.
func serverFlavor(version string) flavor {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return flavorMariaDB
	}
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return flavorMySQLOther
	}
	if major == 5 || (major == 8 && minor < 4) {
		return flavorMySQLNative
	}
	return flavorMySQLOther
}

// nativePasswordHash is MySQL's mysql_native_password hash:
// "*" + upper(hex(sha1(sha1(password)))).
func nativePasswordHash(pw string) string {
	a := sha1.Sum([]byte(pw))
	b := sha1.Sum(a[:])
	return "*" + strings.ToUpper(hex.EncodeToString(b[:]))
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
