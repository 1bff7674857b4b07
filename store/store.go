package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is what the store's functions need from Postgres. *pgxpool.Pool, *pgxpool.Conn, *pgx.Conn and pgx.Tx all
// satisfy it, so the same code runs inside or outside a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

var (
	_ DB = (*pgxpool.Pool)(nil)
	_ DB = (*pgxpool.Conn)(nil)
	_ DB = (pgx.Tx)(nil)
)

// Config says how to reach Postgres. The zero value of every field but DatabaseURL means its default.
type Config struct {
	// DatabaseURL is a libpq URL or key=value string, e.g. postgres://user@host:5432/db?sslmode=disable.
	DatabaseURL string
	// Schema holds chainsink's tables. Default "public".
	Schema string
	// ApplicationName shows in pg_stat_activity. Default "chainsink". A URL's application_name wins.
	ApplicationName string
	// MaxConns caps the pool. Default 8: one per partition worker plus a few for housekeeping.
	MaxConns int32
	// StatementTimeout bounds every statement. Default 5m; 0 in the URL (statement_timeout=0) disables it.
	StatementTimeout time.Duration
	// IdleInTxTimeout makes Postgres end a transaction that a frozen or partitioned client left open, so it
	// cannot hold row locks (and the partition's fence) forever. Default 60s.
	IdleInTxTimeout time.Duration
	// ConnectTimeout bounds each connection attempt. Default 5s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds each wait for the server's answer on an open connection, so that a black-holed
	// path (no answer, no close) fails as a lost connection and is retried on a new one instead of hanging.
	// Default: the session's statement_timeout (the URL's, else StatementTimeout) plus a tenth, at least 1s,
	// so that Postgres's own timeout fires first while the server is reachable; none when statement_timeout
	// is 0. Negative disables it.
	ResponseTimeout time.Duration
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c Config) withDefaults() Config {
	if c.Schema == "" {
		c.Schema = "public"
	}
	if c.ApplicationName == "" {
		c.ApplicationName = "chainsink"
	}
	if c.MaxConns == 0 {
		c.MaxConns = 8
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = 5 * time.Minute
	}
	if c.IdleInTxTimeout == 0 {
		c.IdleInTxTimeout = time.Minute
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work, before anything connects.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.DatabaseURL == "" {
		return errors.New("database URL is empty: set --database-url or CHAINSINK_DATABASE_URL")
	}
	if !schemaName.MatchString(c.Schema) {
		return fmt.Errorf("schema %q: use lower-case letters, digits and underscores", c.Schema)
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	return nil
}

// PoolConfig turns c into a pgxpool config with chainsink's session defaults. Parameters given in the URL are
// kept: an operator's explicit choice beats our default.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	rp := pc.ConnConfig.RuntimeParams
	setDefault := func(k, v string) {
		if _, ok := rp[k]; !ok {
			rp[k] = v
		}
	}
	setDefault("application_name", c.ApplicationName)
	setDefault("statement_timeout", fmt.Sprint(c.StatementTimeout.Milliseconds()))
	setDefault("idle_in_transaction_session_timeout", fmt.Sprint(c.IdleInTxTimeout.Milliseconds()))
	rp["search_path"] = c.Schema
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > c.ConnectTimeout {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	pc.MaxConns = c.MaxConns
	pc.AfterConnect = registerNumeric
	rt := c.ResponseTimeout
	if rt == 0 {
		rt = responseTimeout(rp["statement_timeout"])
	}
	if rt > 0 {
		pc.ConnConfig.DialFunc = dialWithResponseTimeout(pc.ConnConfig.DialFunc, rt)
	}
	return pc, nil
}

// Store is a connection pool bound to chainsink's schema.
type Store struct {
	pool   *pgxpool.Pool
	schema string
}

// Open connects and checks that Postgres answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.withDefaults().ConnectTimeout*2)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to Postgres at %s: %w", Redact(cfg.DatabaseURL), err)
	}
	return &Store{pool: pool, schema: cfg.withDefaults().Schema}, nil
}

// Pool is the underlying pool, for callers that need a dedicated connection.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema is the Postgres schema that holds the tables.
func (s *Store) Schema() string { return s.schema }

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that Postgres answers within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping Postgres: %w", err)
	}
	return nil
}
