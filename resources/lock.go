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
func (e *Env) Lock(ctx context.Context, h LockHolder, wait time.Duration) (Unlocker, error) {
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
	// GET_LOCK waits on the server, up to wait (whole seconds, rounded up).
	secs := int64((wait + time.Second - 1) / time.Second) // a part of a second waits one
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", e.lockName(), secs).Scan(&got); err != nil {
		closeAll()
		return nil, fmt.Errorf("lock %q: %w", e.lockName(), err)
	}
	if !got.Valid || got.Int64 != 1 {
		closeAll()
		held := &LockHeldError{Name: e.lockName()}
		held.Holder, _ = e.lockHolder(ctx)
		return nil, held
	}
	var connID int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&connID); err != nil {
		closeAll()
		return nil, fmt.Errorf("lock %q: %w", e.lockName(), err)
	}
	rec, err := json.Marshal(h)
	if err != nil {
		closeAll()
		return nil, err
	}
	// The record goes into the statement text (not a bound value) so the
	// process list shows it; it holds no secret. Short sleeps in a loop:
	// if this haplan dies, the server notices the closed connection at the
	// end of the current sleep and releases the lock with it.
	q := fmt.Sprintf("SELECT SLEEP(%d) /* %s%s */", int(holdSlice/time.Second), holderMarker, strings.ReplaceAll(string(rec), "*/", ""))
	stop := make(chan struct{})
	done := make(chan struct{})
	lost := make(chan struct{})
	e.mu.Lock()
	e.lockLost = lost
	e.mu.Unlock()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				select {
				case <-stop: // released: KILL QUERY ended the sleep
					return
				default:
				}
				e.log.Warn("lock connection lost", "lock", e.lockName(), "err", err)
				close(lost)
				return
			}
		}
	}()
	return func(ctx context.Context) error {
		close(stop)
		// Interrupt the current sleep instead of waiting it out.
		if db, err := e.adminDB(ctx); err == nil {
			_, _ = db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", connID))
		}
		select {
		case <-done:
		case <-ctx.Done():
			closeAll()
			return ctx.Err()
		}
		var released sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", e.lockName()).Scan(&released)
		closeAll()
		if err != nil {
			return fmt.Errorf("release lock %q: %w", e.lockName(), err)
		}
		return nil
	}, nil
}

// LockLost is closed when the connection holding the cluster's lock drops
// while it is held (database restarted, network cut): from then on another
// haplan could take the lock, so the caller should start nothing new. Nil
// (never closed) before Lock.
func (e *Env) LockLost() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lockLost
}

// holdSlice is how long each holder query sleeps: the longest a dead
// haplan's lock outlives it.
const holdSlice = 2 * time.Second

// lockHolder reads the holder record from the process list. The record is
// the text of the statement the holder runs, so a holder that runs none
// (hung, suspended, cut off) is described by its database session instead.
func (e *Env) lockHolder(ctx context.Context) (*LockHolder, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	// Between two sleeps the holder's statement text is briefly empty.
	var info sql.NullString
	var id int64
	i := -1
	for try := 0; try < 5 && i < 0; try++ {
		if try > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		err = db.QueryRowContext(ctx,
			"SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)", e.lockName()).Scan(&id, &info)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		i = strings.Index(info.String, holderMarker)
	}
	if i < 0 {
		return e.lockSession(ctx, db)
	}
	rec := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(info.String[i+len(holderMarker):]), "*/"))
	var h LockHolder
	if err := json.Unmarshal([]byte(rec), &h); err != nil {
		return nil, err
	}
	h.ID, h.Live = id, true
	return &h, nil
}

// lockSession describes the database session that holds the lock.
func (e *Env) lockSession(ctx context.Context, db *sql.DB) (*LockHolder, error) {
	var (
		id                  int64
		user, host, command string
		secs                int64
	)
	err := db.QueryRowContext(ctx,
		"SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)", e.lockName()).
		Scan(&id, &user, &host, &command, &secs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("the lock was released while its holder was looked up")
	}
	if err != nil {
		return nil, err
	}
	return &LockHolder{ID: id, Session: fmt.Sprintf(
		"database session %d of %s from %s (%s for %s), which records no holder: a haplan that is hung, suspended or cut off keeps the lock until that session ends",
		id, user, host, strings.ToLower(command), time.Duration(secs)*time.Second)}, nil
}

// LockStatus is the holder of the cluster's lock, or nil when it is free.
func (e *Env) LockStatus(ctx context.Context) (*LockHolder, error) {
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
	h, err := e.lockHolder(ctx)
	if err != nil {
		return &LockHolder{ID: id.Int64, Session: fmt.Sprintf("database session %d", id.Int64)}, nil
	}
	return h, nil
}

// LockMovedError: the lock is no longer held by the ID force-unlock was
// given (it was released, and maybe taken by another run).
type LockMovedError struct {
	Want int64
	Now  *LockHolder // nil: the lock is free
}

func (e *LockMovedError) Error() string {
	if e.Now == nil {
		return fmt.Sprintf("lock ID %d no longer holds the lock: it is free", e.Want)
	}
	return fmt.Sprintf("lock ID %d no longer holds the lock: %s holds it now", e.Want, e.Now)
}

// ForceUnlock ends the database session id, which must hold the cluster's
// lock, for a lock left by a haplan that cannot release it. It returns who
// holds the lock once it is released: nil when it is free, or another run
// that took it at once (it is not touched).
func (e *Env) ForceUnlock(ctx context.Context, id int64) (*LockHolder, error) {
	db, err := e.adminDB(ctx)
	if err != nil {
		return nil, err
	}
	var held sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", e.lockName()).Scan(&held); err != nil {
		return nil, fmt.Errorf("look up lock %q: %w", e.lockName(), err)
	}
	if !held.Valid || held.Int64 != id {
		me := &LockMovedError{Want: id}
		if held.Valid {
			me.Now = e.holderOrID(ctx, held.Int64)
		}
		return nil, me
	}
	killed := true
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		// The session may have ended between the look and the kill
		// (ER_NO_SUCH_THREAD): what the lock is now is said below.
		if me := (*mysql.MySQLError)(nil); !errors.As(err, &me) || me.Number != errNoSuchThread {
			return nil, fmt.Errorf("release lock %q held by connection %d: %w", e.lockName(), id, err)
		}
		killed = false
	}
	// KILL is asynchronous; wait (5 s at most) until the server has let
	// go. Another run may take the lock as soon as it is free: the lock
	// was released all the same, and who holds it now is said.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", e.lockName()).Scan(&held)
		switch {
		case err == nil && !held.Valid:
			return nil, nil
		case err == nil && held.Int64 != id:
			return e.holderOrID(ctx, held.Int64), nil
		}
		if time.Now().After(deadline) {
			what := "5 s after it was killed"
			if !killed {
				what = "5 s after its session was found gone"
			}
			if err != nil {
				return nil, fmt.Errorf("lock %q: %s, it cannot be looked up: %w", e.lockName(), what, err)
			}
			return nil, fmt.Errorf("lock %q is still held by connection %d %s", e.lockName(), id, what)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// holderOrID is the lock's holder, or at least its session id when the
// holder cannot be looked up.
func (e *Env) holderOrID(ctx context.Context, id int64) *LockHolder {
	if h, err := e.LockStatus(ctx); err == nil && h != nil {
		return h
	}
	return &LockHolder{ID: id, Session: fmt.Sprintf("database session %d", id)}
}

// errNoSuchThread is MySQL's ER_NO_SUCH_THREAD: KILL of a session that
// has ended.
const errNoSuchThread = 1094
