package standin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The stand-in keeps what hosts joining the cluster create in its own
// tables (standin_*) of the shared database, so every server (bootstrap
// and HA nodes) sees the same tokens, agents and hosts. Cattle keeps them
// in credential, generic_object, agent, account and host; the stand-in's
// rows hold what a client can observe of those.

// Credential is a registration token: a credential of kind
// registrationToken of an account (cattle v0.159.7 RegisterTokenCreate
// extends ApiKeyCreate, not hashed).
type Credential struct {
	ID        int64
	AccountID string // "1a5"
	Kind      string
	Public    string
	Secret    string
	UUID      string
	Created   int64 // Unix ms
	Life      lifecycle
	// AutoKey names the token cattle creates with an account
	// (RegisterTokenAccountCreate): at most one per key.
	AutoKey string
}

// AgentRecord is a register object and the agent it created (cattle
// v0.159.7 RegisterCreate, RegisterDaoImpl.createAgentForRegistration):
// Key is the machine's /var/lib/rancher/state/.registration_token, Access
// and Secret the agent's API key pair.
type AgentRecord struct {
	ID        int64
	Key       string
	AccountID string // the resources account: the registration token's
	Access    string
	Secret    string
	UUID      string
	Created   int64
	// RegLife is the register object's lifecycle.
	RegLife lifecycle
	// State is the agent's: "active", or "inactive" once its host was
	// removed (HostRemove deactivates the agent), shown as
	// "deactivating" until StateUntil.
	State      string
	StateUntil int64
	// LastPing is when the agent last answered; 0 before it connected.
	LastPing int64
	// HostAgentState is the host agentState AgentHostStateUpdate left: ""
	// (null) until the agent went through a reconnect, then "active".
	HostAgentState string
}

// HostRecord is a host an agent reported (AgentResourcesMonitorImpl
// setHosts): one per (agent, reported uuid).
type HostRecord struct {
	ID           int64
	AgentID      int64
	ReportedUUID string
	AccountID    string
	UUID         string
	Hostname     string
	Labels       map[string]string
	IP           string
	Created      int64
	Life         lifecycle
}

// ProjectRecord is an environment created through POST /v1/projects.
type ProjectRecord struct {
	ID          int64
	Name        string
	Description string
	UUID        string
	Created     int64
	Life        lifecycle
}

// Registry stores tokens, agents, hosts and created projects.
type Registry interface {
	Credentials(ctx context.Context) ([]Credential, error)
	// AddCredential inserts c and sets its ID. A credential with an
	// AutoKey that already exists is left as it is and loaded into c.
	AddCredential(ctx context.Context, c *Credential) error
	SetCredentialLife(ctx context.Context, id int64, l lifecycle) error

	Agents(ctx context.Context) ([]AgentRecord, error)
	// AddAgent inserts a unless an agent with its Key exists, which is
	// then loaded into a; existed tells which.
	AddAgent(ctx context.Context, a *AgentRecord) (existed bool, err error)
	SetAgentState(ctx context.Context, id int64, state string, until int64) error
	PingAgent(ctx context.Context, id int64, at int64, hostAgentState string) error

	Hosts(ctx context.Context) ([]HostRecord, error)
	// AddHost inserts h unless the agent already has a host with its
	// ReportedUUID, which is then loaded into h; existed tells which.
	AddHost(ctx context.Context, h *HostRecord) (existed bool, err error)
	// ReportHost records what the agent reported of an existing host.
	ReportHost(ctx context.Context, id int64, hostname, ip string, labels map[string]string) error
	SetHostLife(ctx context.Context, id int64, l lifecycle) error

	Projects(ctx context.Context) ([]ProjectRecord, error)
	AddProject(ctx context.Context, p *ProjectRecord) error
}

// registrySchema is created with the other tables by Migrate. Host ids
// start at 1000 so they never meet the ids the System HA hosts take from
// the cluster table; project ids at 10, past the fixed 1a1, 1a5 and 1a7.
var registrySchema = []string{
	`CREATE TABLE IF NOT EXISTS standin_credential (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  account_id varchar(32) NOT NULL,
  kind varchar(64) NOT NULL,
  public_value varchar(64) NOT NULL,
  secret_value varchar(255) NOT NULL,
  uuid varchar(128) NOT NULL,
  created bigint(20) NOT NULL,
  state varchar(32) NOT NULL,
  trans varchar(32) NOT NULL DEFAULT '',
  trans_until bigint(20) NOT NULL DEFAULT 0,
  removed bigint(20) NOT NULL DEFAULT 0,
  remove_time bigint(20) NOT NULL DEFAULT 0,
  auto_key varchar(64) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY idx_standin_credential_public (public_value),
  UNIQUE KEY idx_standin_credential_auto (auto_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS standin_agent (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  reg_key varchar(255) NOT NULL,
  account_id varchar(32) NOT NULL,
  access_key varchar(64) NOT NULL,
  secret_key varchar(255) NOT NULL,
  uuid varchar(128) NOT NULL,
  created bigint(20) NOT NULL,
  reg_state varchar(32) NOT NULL,
  reg_trans varchar(32) NOT NULL DEFAULT '',
  reg_trans_until bigint(20) NOT NULL DEFAULT 0,
  state varchar(32) NOT NULL,
  state_until bigint(20) NOT NULL DEFAULT 0,
  last_ping bigint(20) NOT NULL DEFAULT 0,
  host_agent_state varchar(32) NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY idx_standin_agent_key (reg_key),
  UNIQUE KEY idx_standin_agent_access (access_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS standin_host (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  agent_id bigint(20) NOT NULL,
  reported_uuid varchar(128) NOT NULL,
  account_id varchar(32) NOT NULL,
  uuid varchar(128) NOT NULL,
  hostname varchar(255) NOT NULL DEFAULT '',
  labels mediumtext,
  ip_address varchar(64) NOT NULL DEFAULT '',
  created bigint(20) NOT NULL,
  state varchar(32) NOT NULL,
  trans varchar(32) NOT NULL DEFAULT '',
  trans_until bigint(20) NOT NULL DEFAULT 0,
  removed bigint(20) NOT NULL DEFAULT 0,
  remove_time bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY idx_standin_host_reported (agent_id, reported_uuid)
) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8`,
	`CREATE TABLE IF NOT EXISTS standin_project (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  name varchar(255) NOT NULL,
  description mediumtext,
  uuid varchar(128) NOT NULL,
  created bigint(20) NOT NULL,
  state varchar(32) NOT NULL,
  trans varchar(32) NOT NULL DEFAULT '',
  trans_until bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB AUTO_INCREMENT=10 DEFAULT CHARSET=utf8`,
}

var _ Registry = (*Store)(nil)

// Credentials lists every credential row.
func (s *Store) Credentials(ctx context.Context) ([]Credential, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, account_id, kind, public_value, secret_value, uuid, created,
  state, trans, trans_until, removed, remove_time, COALESCE(auto_key, '') FROM standin_credential ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		var c Credential
		if err := rows.Scan(&c.ID, &c.AccountID, &c.Kind, &c.Public, &c.Secret, &c.UUID, &c.Created,
			&c.Life.State, &c.Life.Trans, &c.Life.Until, &c.Life.Removed, &c.Life.RemoveTime, &c.AutoKey); err != nil {
			return nil, fmt.Errorf("list credentials: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AddCredential inserts c.
// An ignored INSERT still takes an AUTO_INCREMENT value, so the row is
// looked for first: ids stay dense, as the real tables' are.
func (s *Store) AddCredential(ctx context.Context, c *Credential) error {
	var auto any
	if c.AutoKey != "" {
		auto = c.AutoKey
		cs, err := s.Credentials(ctx)
		if err != nil {
			return err
		}
		for _, x := range cs {
			if x.AutoKey == c.AutoKey {
				*c = x
				return nil
			}
		}
	}
	res, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO standin_credential (account_id, kind, public_value, secret_value, uuid, created,
  state, trans, trans_until, removed, remove_time, auto_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.AccountID, c.Kind, c.Public, c.Secret, c.UUID, c.Created,
		c.Life.State, c.Life.Trans, c.Life.Until, c.Life.Removed, c.Life.RemoveTime, auto)
	if err != nil {
		return fmt.Errorf("add credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		c.ID, err = res.LastInsertId()
		return err
	}
	cs, err := s.Credentials(ctx)
	if err != nil {
		return err
	}
	for _, x := range cs {
		if c.AutoKey != "" && x.AutoKey == c.AutoKey {
			*c = x
			return nil
		}
	}
	return fmt.Errorf("add credential: duplicate public value")
}

// SetCredentialLife writes a credential's lifecycle.
func (s *Store) SetCredentialLife(ctx context.Context, id int64, l lifecycle) error {
	_, err := s.db.ExecContext(ctx, `UPDATE standin_credential SET state=?, trans=?, trans_until=?, removed=?, remove_time=? WHERE id=?`,
		l.State, l.Trans, l.Until, l.Removed, l.RemoveTime, id)
	if err != nil {
		return fmt.Errorf("update credential %d: %w", id, err)
	}
	return nil
}

const agentColumns = `id, reg_key, account_id, access_key, secret_key, uuid, created, reg_state, reg_trans, reg_trans_until,
  state, state_until, last_ping, host_agent_state`

func scanAgent(sc interface{ Scan(...any) error }) (AgentRecord, error) {
	var a AgentRecord
	err := sc.Scan(&a.ID, &a.Key, &a.AccountID, &a.Access, &a.Secret, &a.UUID, &a.Created,
		&a.RegLife.State, &a.RegLife.Trans, &a.RegLife.Until, &a.State, &a.StateUntil, &a.LastPing, &a.HostAgentState)
	return a, err
}

// Agents lists every agent.
func (s *Store) Agents(ctx context.Context) ([]AgentRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentColumns+` FROM standin_agent ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []AgentRecord
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddAgent inserts a unless its key is known.
func (s *Store) AddAgent(ctx context.Context, a *AgentRecord) (bool, error) {
	if got, err := scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM standin_agent WHERE reg_key=?`, a.Key)); err == nil {
		*a = got
		return true, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("load agent: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO standin_agent (reg_key, account_id, access_key, secret_key, uuid, created,
  reg_state, reg_trans, reg_trans_until, state, state_until, last_ping, host_agent_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Key, a.AccountID, a.Access, a.Secret, a.UUID, a.Created, a.RegLife.State, a.RegLife.Trans, a.RegLife.Until,
		a.State, a.StateUntil, a.LastPing, a.HostAgentState)
	if err != nil {
		return false, fmt.Errorf("add agent: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		a.ID, err = res.LastInsertId()
		return false, err
	}
	got, err := scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM standin_agent WHERE reg_key=?`, a.Key))
	if err != nil {
		return false, fmt.Errorf("load agent: %w", err)
	}
	*a = got
	return true, nil
}

// SetAgentState writes an agent's state.
func (s *Store) SetAgentState(ctx context.Context, id int64, state string, until int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE standin_agent SET state=?, state_until=? WHERE id=?`, state, until, id); err != nil {
		return fmt.Errorf("update agent %d: %w", id, err)
	}
	return nil
}

// PingAgent records an answer of the agent.
func (s *Store) PingAgent(ctx context.Context, id int64, at int64, hostAgentState string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE standin_agent SET last_ping=?, host_agent_state=? WHERE id=?`, at, hostAgentState, id); err != nil {
		return fmt.Errorf("ping agent %d: %w", id, err)
	}
	return nil
}

const hostColumns = `id, agent_id, reported_uuid, account_id, uuid, hostname, COALESCE(labels, ''), ip_address, created,
  state, trans, trans_until, removed, remove_time`

func scanHost(sc interface{ Scan(...any) error }) (HostRecord, error) {
	var h HostRecord
	var labels string
	err := sc.Scan(&h.ID, &h.AgentID, &h.ReportedUUID, &h.AccountID, &h.UUID, &h.Hostname, &labels, &h.IP, &h.Created,
		&h.Life.State, &h.Life.Trans, &h.Life.Until, &h.Life.Removed, &h.Life.RemoveTime)
	if err == nil && labels != "" {
		err = json.Unmarshal([]byte(labels), &h.Labels)
	}
	return h, err
}

// Hosts lists every registered host.
func (s *Store) Hosts(ctx context.Context) ([]HostRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostColumns+` FROM standin_host ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []HostRecord
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func labelsJSON(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// AddHost inserts h unless its agent already reported that uuid.
func (s *Store) AddHost(ctx context.Context, h *HostRecord) (bool, error) {
	got, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostColumns+` FROM standin_host WHERE agent_id=? AND reported_uuid=?`,
		h.AgentID, h.ReportedUUID))
	if err == nil {
		*h = got
		return true, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("load host: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO standin_host (agent_id, reported_uuid, account_id, uuid, hostname, labels,
  ip_address, created, state, trans, trans_until, removed, remove_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.AgentID, h.ReportedUUID, h.AccountID, h.UUID, h.Hostname, labelsJSON(h.Labels), h.IP, h.Created,
		h.Life.State, h.Life.Trans, h.Life.Until, h.Life.Removed, h.Life.RemoveTime)
	if err != nil {
		return false, fmt.Errorf("add host: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		h.ID, err = res.LastInsertId()
		return false, err
	}
	got, err = scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostColumns+` FROM standin_host WHERE agent_id=? AND reported_uuid=?`,
		h.AgentID, h.ReportedUUID))
	if err != nil {
		return false, fmt.Errorf("load host: %w", err)
	}
	*h = got
	return true, nil
}

// ReportHost updates what the agent reported.
func (s *Store) ReportHost(ctx context.Context, id int64, hostname, ip string, labels map[string]string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE standin_host SET hostname=?, ip_address=?, labels=? WHERE id=?`,
		hostname, ip, labelsJSON(labels), id); err != nil {
		return fmt.Errorf("update host %d: %w", id, err)
	}
	return nil
}

// SetHostLife writes a host's lifecycle.
func (s *Store) SetHostLife(ctx context.Context, id int64, l lifecycle) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE standin_host SET state=?, trans=?, trans_until=?, removed=?, remove_time=? WHERE id=?`,
		l.State, l.Trans, l.Until, l.Removed, l.RemoveTime, id); err != nil {
		return fmt.Errorf("update host %d: %w", id, err)
	}
	return nil
}

// Projects lists the created projects.
func (s *Store) Projects(ctx context.Context) ([]ProjectRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, COALESCE(description, ''), uuid, created, state, trans, trans_until
  FROM standin_project ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []ProjectRecord
	for rows.Next() {
		var p ProjectRecord
		if err := rows.Scan(&p.ID, &p.Name, &p.Description, &p.UUID, &p.Created, &p.Life.State, &p.Life.Trans, &p.Life.Until); err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AddProject inserts p.
func (s *Store) AddProject(ctx context.Context, p *ProjectRecord) error {
	var desc any
	if p.Description != "" {
		desc = p.Description
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO standin_project (name, description, uuid, created, state, trans, trans_until)
  VALUES (?, ?, ?, ?, ?, ?, ?)`, p.Name, desc, p.UUID, p.Created, p.Life.State, p.Life.Trans, p.Life.Until)
	if err != nil {
		return fmt.Errorf("add project: %w", err)
	}
	p.ID, err = res.LastInsertId()
	return err
}

// idNumber parses the number of a cattle id ("1h1000" -> 1000) with the
// given prefix.
func idNumber(id, prefix string) (int64, bool) {
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return 0, false
	}
	n, err := strconv.ParseInt(id[len(prefix):], 10, 64)
	return n, err == nil && n > 0
}
