package standin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Setting names. The first two are cattle's; the others are the stand-in's
// own bookkeeping for what the real server keeps in other tables.
const (
	SettingHAEnabled     = "ha.enabled"
	SettingClusterSize   = "ha.cluster.size"
	settingProjectUUID   = "standin.system-ha.project.uuid"
	settingStackLaunched = "standin.management.launched"
	certSystemSSL        = "system-ssl"
)

// schema is created with CREATE TABLE IF NOT EXISTS by both modes.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS setting (
  name varchar(255) NOT NULL,
  value mediumtext,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS cluster (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  name varchar(255) DEFAULT NULL,
  heartbeat bigint(20) NOT NULL DEFAULT 0,
  uuid varchar(128) NOT NULL,
  ip_address varchar(255) DEFAULT NULL,
  requested_index int(11) NOT NULL DEFAULT 0,
  assigned_index int(11) NOT NULL DEFAULT 0,
  ports varchar(1024) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY idx_cluster_uuid (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS certificate (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  name varchar(255) NOT NULL,
  cert_chain mediumtext,
  cert mediumtext,
  cert_key mediumtext,
  created bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY idx_certificate_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS DATABASECHANGELOGLOCK (
  ID int(11) NOT NULL,
  LOCKED bit(1) NOT NULL,
  LOCKGRANTED datetime DEFAULT NULL,
  LOCKEDBY varchar(255) DEFAULT NULL,
  PRIMARY KEY (ID)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
}

// ErrSchema reports that the schema could not be created or written, most
// often because the user lacks ALL on the database. Never retried.
var ErrSchema = errors.New("cannot create the cattle schema (does the user have ALL privileges on the database?)")

// ErrLocked reports that the changelog lock is held by another server.
var ErrLocked = errors.New("could not acquire change log lock")

// Store is the stand-in's view of the Rancher database.
type Store struct{ db *sql.DB }

// OpenStore opens a pool and checks it with a ping.
func OpenStore(ctx context.Context, c DBConfig) (*Store, error) {
	db, err := sql.Open("mysql", c.DSN())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", c, err)
	}
	db.SetMaxOpenConns(10)
	db.SetConnMaxLifetime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database %s: %w", c, err)
	}
	return &Store{db: db}, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Migrate creates the tables and proves the user can write to them.
func (s *Store) Migrate(ctx context.Context) error {
	for _, q := range append(append([]string(nil), schema...), registrySchema...) {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%w: %w", ErrSchema, err)
		}
	}
	if _, err := s.db.ExecContext(ctx,
		`INSERT IGNORE INTO DATABASECHANGELOGLOCK (ID, LOCKED) VALUES (1, b'0')`); err != nil {
		return fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return nil
}

// AcquireLock takes the liquibase-style changelog lock for owner. It returns
// ErrLocked (with the holder) when another owner holds it.
func (s *Store) AcquireLock(ctx context.Context, owner string) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE DATABASECHANGELOGLOCK SET LOCKED=b'1', LOCKGRANTED=NOW(), LOCKEDBY=? WHERE ID=1 AND LOCKED=b'0'`, owner)
	if err != nil {
		return fmt.Errorf("acquire change log lock: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	var by sql.NullString
	var granted sql.NullString
	err = s.db.QueryRowContext(ctx,
		`SELECT LOCKEDBY, CAST(LOCKGRANTED AS CHAR) FROM DATABASECHANGELOGLOCK WHERE ID=1`).Scan(&by, &granted)
	if err != nil {
		return fmt.Errorf("read change log lock: %w", err)
	}
	return fmt.Errorf("%w: currently locked by %s since %s", ErrLocked, by.String, granted.String)
}

// ReleaseLock frees the changelog lock.
func (s *Store) ReleaseLock(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx,
		`UPDATE DATABASECHANGELOGLOCK SET LOCKED=b'0', LOCKGRANTED=NULL, LOCKEDBY=NULL WHERE ID=1`); err != nil {
		return fmt.Errorf("release change log lock: %w", err)
	}
	return nil
}

// Setting returns a setting; ok is false when it is not set.
func (s *Store) Setting(ctx context.Context, name string) (value string, ok bool, err error) {
	var v sql.NullString
	err = s.db.QueryRowContext(ctx, `SELECT value FROM setting WHERE name=?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", name, err)
	}
	return v.String, true, nil
}

// SetSetting writes a setting.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO setting (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value=VALUES(value)`, name, value); err != nil {
		return fmt.Errorf("write setting %s: %w", name, err)
	}
	return nil
}

// EnsureSetting sets name to value unless it is already set, and returns the
// stored value: the first writer wins.
func (s *Store) EnsureSetting(ctx context.Context, name, value string) (string, error) {
	if _, err := s.db.ExecContext(ctx,
		`INSERT IGNORE INTO setting (name, value) VALUES (?, ?)`, name, value); err != nil {
		return "", fmt.Errorf("write setting %s: %w", name, err)
	}
	v, _, err := s.Setting(ctx, name)
	return v, err
}

// SettingsWithPrefix returns every setting whose name starts with prefix.
func (s *Store) SettingsWithPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM setting WHERE name LIKE ?`, strings.ReplaceAll(prefix, "_", `\_`)+"%")
	if err != nil {
		return nil, fmt.Errorf("read settings %s*: %w", prefix, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n string
		var v sql.NullString
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v.String
	}
	return out, rows.Err()
}

// DeleteSetting removes a setting.
func (s *Store) DeleteSetting(ctx context.Context, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM setting WHERE name=?`, name); err != nil {
		return fmt.Errorf("delete setting %s: %w", name, err)
	}
	return nil
}

// Certificate returns a stored certificate; ok is false when it is absent.
func (s *Store) Certificate(ctx context.Context, name string) (b CertBundle, ok bool, err error) {
	var chain, cert, key sql.NullString
	err = s.db.QueryRowContext(ctx,
		`SELECT cert_chain, cert, cert_key FROM certificate WHERE name=?`, name).Scan(&chain, &cert, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return CertBundle{}, false, nil
	}
	if err != nil {
		return CertBundle{}, false, fmt.Errorf("read certificate %s: %w", name, err)
	}
	return CertBundle{Cert: []byte(cert.String), Key: []byte(key.String), Chain: []byte(chain.String)}, true, nil
}

// PutCertificate stores b under name unless a certificate of that name
// exists (the first master wins).
func (s *Store) PutCertificate(ctx context.Context, name string, b CertBundle) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT IGNORE INTO certificate (name, cert_chain, cert, cert_key, created) VALUES (?, ?, ?, ?, ?)`,
		name, string(b.Chain), string(b.Cert), string(b.Key), time.Now().Unix()); err != nil {
		return fmt.Errorf("store certificate %s: %w", name, err)
	}
	return nil
}

// Register inserts a cluster member and returns its id.
func (s *Store) Register(ctx context.Context, m Member) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO cluster (name, heartbeat, uuid, ip_address, requested_index, assigned_index, ports) VALUES (?, 0, ?, ?, ?, 0, ?)`,
		m.Name, m.UUID, m.IP, m.RequestedIndex, m.Ports)
	if err != nil {
		return 0, fmt.Errorf("register cluster member: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("register cluster member: %w", err)
	}
	return id, nil
}

// Heartbeat bumps a member's counter. ok is false when the row is gone (the
// master forgot this member).
func (s *Store) Heartbeat(ctx context.Context, id int64) (ok bool, err error) {
	res, err := s.db.ExecContext(ctx, `UPDATE cluster SET heartbeat=heartbeat+1 WHERE id=?`, id)
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	return n == 1, nil
}

// Members lists the cluster table ordered by id.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, COALESCE(name,''), heartbeat, uuid, COALESCE(ip_address,''), requested_index, assigned_index, COALESCE(ports,'') FROM cluster ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list cluster members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ID, &m.Name, &m.Heartbeat, &m.UUID, &m.IP, &m.RequestedIndex, &m.AssignedIndex, &m.Ports); err != nil {
			return nil, fmt.Errorf("list cluster members: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list cluster members: %w", err)
	}
	return out, nil
}

// DeleteMember forgets a member.
func (s *Store) DeleteMember(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM cluster WHERE id=?`, id); err != nil {
		return fmt.Errorf("delete cluster member %d: %w", id, err)
	}
	return nil
}

// AssignIndex records the index the master gave a member.
func (s *Store) AssignIndex(ctx context.Context, id int64, index int) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE cluster SET assigned_index=? WHERE id=?`, index, id); err != nil {
		return fmt.Errorf("assign index to member %d: %w", id, err)
	}
	return nil
}

// isAccessDenied reports MySQL errors that retrying will not fix: bad
// credentials (1045), no access to the database (1044), unknown database (1049).
func isAccessDenied(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1049:
			return true
		}
	}
	return false
}
