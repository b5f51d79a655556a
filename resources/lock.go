package resources

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// lockName is the MySQL named lock of a cluster.
func (e *Env) lockName() string { return "haplan/" + e.c.Name }

// holderMarker prefixes the holder record in the lock connection's query.
const holderMarker = "haplan-lock-holder:"

// Lock takes the cluster's named lock on the admin database server for the
// whole apply. The lock lives in a dedicated connection that runs a
// long-sleeping query whose text carries the holder record, so a second
// haplan can name the holder from the process list; if this haplan dies, its
// connection closes and the server releases the lock.
func (e *Env) Lock(ctx context.Context, h LockHolder) (Unlocker, error) {
	if _, err := e.adminDB(ctx); err != nil {
		return nil, err
	}
	// Its own connection without a read timeout: the holder query sleeps
	// for as long as the apply runs.
	cfg := e.adminConfig()
	cfg.ReadTimeout = 0
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	lockDB := sql.OpenDB(connector)
	conn, err := lockDB.Conn(ctx)
	if err != nil {
		lockDB.Close()
		return nil, fmt.Errorf("lock %q: %w", e.lockName(), err)
	}
	closeAll := func() { conn.Close(); lockDB.Close() }
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", e.lockName()).Scan(&got); err != nil {
		closeAll()
		return nil, fmt.Errorf("lock %q: %w", e.lockName(), err)
	}
	if !got.Valid || got.Int64 != 1 {
		closeAll()
		held := &LockHeldError{Name: e.lockName()}
		held.Holder, _ = e.lockHolder(ctx)
		return nil, held
	}
	rec, err := json.Marshal(h)
	if err != nil {
		closeAll()
		return nil, err
	}
	hold, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The record goes into the statement text (not a bound value) so
		// the process list shows it; it holds no secret.
		q := fmt.Sprintf("SELECT SLEEP(31536000) /* %s%s */", holderMarker, strings.ReplaceAll(string(rec), "*/", ""))
		_, _ = conn.ExecContext(hold, q)
	}()
	return func(ctx context.Context) error {
		// Cancelling the sleeping query makes the driver drop the
		// connection, and the server releases the lock with it.
		stop()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		closeAll()
		return nil
	}, nil
}

// lockHolder reads the holder record from the process list.
func (e *Env) lockHolder(ctx context.Context) (*LockHolder, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	var info sql.NullString
	err = db.QueryRowContext(ctx,
		"SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)", e.lockName()).Scan(&info)
	if err != nil {
		return nil, err
	}
	i := strings.Index(info.String, holderMarker)
	if i < 0 {
		return nil, errors.New("holder did not record itself")
	}
	rec := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(info.String[i+len(holderMarker):]), "*/"))
	var h LockHolder
	if err := json.Unmarshal([]byte(rec), &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// ForceUnlock ends the connection that holds the cluster's lock, for a lock
// left by a haplan that cannot release it. It returns the holder it removed,
// or nil when the lock was free.
func (e *Env) ForceUnlock(ctx context.Context) (*LockHolder, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	var id sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", e.lockName()).Scan(&id); err != nil {
		return nil, fmt.Errorf("look up lock %q: %w", e.lockName(), err)
	}
	if !id.Valid {
		return nil, nil
	}
	h, _ := e.lockHolder(ctx)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id.Int64)); err != nil {
		return h, fmt.Errorf("release lock %q held by connection %d: %w", e.lockName(), id.Int64, err)
	}
	// KILL is asynchronous; wait until the server has let go.
	for i := 0; i < 50; i++ {
		if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", e.lockName()).Scan(&id); err == nil && !id.Valid {
			return h, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h, fmt.Errorf("lock %q still held after killing its connection", e.lockName())
}
