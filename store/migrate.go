package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc64"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/chainsink/chainsink/migrations"
)

// Migrator applies the embedded migrations to one schema through a goose Provider. It holds its own
// database/sql handle because goose speaks database/sql.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
	schema   string
}

// NewMigrator connects and prepares the provider. logger may be nil.
func NewMigrator(ctx context.Context, cfg Config, logger *slog.Logger) (*Migrator, error) {
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	schema := cfg.withDefaults().Schema
	// Migrations may build indexes on large tables: no statement timeout unless the URL asks for one.
	if raw, err := pgx.ParseConfig(cfg.DatabaseURL); err == nil {
		if _, set := raw.RuntimeParams["statement_timeout"]; !set {
			pc.ConnConfig.RuntimeParams["statement_timeout"] = "0"
		}
	}
	db := stdlib.OpenDB(*pc.ConnConfig)
	pingCtx, cancel := context.WithTimeout(ctx, 2*cfg.withDefaults().ConnectTimeout)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to Postgres at %s: %w", Redact(cfg.DatabaseURL), err)
	}
	// One advisory lock per schema: two instances migrating the same schema take turns, while tests that
	// migrate their own schemas do not wait for each other.
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID(schema)),
		lock.WithLockTimeout(1, 300))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{db: db, provider: p, schema: schema}, nil
}

// migrationLockID is the advisory lock that migrations and `chainsink tables apply` of one schema take.
func migrationLockID(schema string) int64 {
	return int64(crc64.Checksum([]byte("chainsink:"+schema), crc64.MakeTable(crc64.ECMA)) >> 1)
}

// Close releases the connection.
func (m *Migrator) Close() error { return m.db.Close() }

// Schema is the schema being migrated.
func (m *Migrator) Schema() string { return m.schema }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	res, err := m.provider.Up(ctx)
	return res, wrapMigrate("apply migrations", err)
}

// UpTo applies pending migrations up to and including version.
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]*goose.MigrationResult, error) {
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	res, err := m.provider.UpTo(ctx, version)
	return res, wrapMigrate(fmt.Sprintf("apply migrations up to %d", version), err)
}

// ensureSchema creates the schema on first use, so that `migrate up` on an empty database needs nothing else.
func (m *Migrator) ensureSchema(ctx context.Context) error {
	exists, err := m.schemaExists(ctx)
	if err != nil || exists {
		return err
	}
	if _, err := m.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{m.schema}.Sanitize()); err != nil {
		// IF NOT EXISTS is not atomic: a concurrent `migrate up` may create it between the check and the insert.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
			return nil
		}
		return fmt.Errorf("create schema %s: %w", m.schema, err)
	}
	return nil
}

func (m *Migrator) schemaExists(ctx context.Context) (bool, error) {
	var exists bool
	err := m.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, m.schema).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("look up schema %s: %w", m.schema, err)
	}
	return exists, nil
}

// Down rolls back the newest applied migration.
func (m *Migrator) Down(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return nil, wrapMigrate("roll back migration", err)
	}
	return []*goose.MigrationResult{res}, nil
}

// DownTo rolls back applied migrations newer than version; 0 rolls back everything.
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]*goose.MigrationResult, error) {
	res, err := m.provider.DownTo(ctx, version)
	return res, wrapMigrate(fmt.Sprintf("roll back migrations to %d", version), err)
}

// Status lists every known migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	return st, wrapMigrate("read migration status", err)
}

// Version is the newest applied migration (0 for none) and the newest known one.
func (m *Migrator) Version(ctx context.Context) (current, latest int64, err error) {
	current, latest, err = m.provider.GetVersions(ctx)
	return current, latest, wrapMigrate("read migration version", err)
}

// HasPending reports whether a migration is waiting to be applied.
func (m *Migrator) HasPending(ctx context.Context) (bool, error) {
	p, err := m.provider.HasPending(ctx)
	return p, wrapMigrate("check pending migrations", err)
}

func wrapMigrate(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goose.ErrNoNextVersion) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ErrPendingMigrations is returned by CheckMigrated when the schema is behind the binary.
var ErrPendingMigrations = errors.New("database schema has pending migrations")

// CheckMigrated fails with ErrPendingMigrations, naming the versions, when the schema is not fully migrated.
func CheckMigrated(ctx context.Context, cfg Config) error {
	m, err := NewMigrator(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	if exists, err := m.schemaExists(ctx); err != nil {
		return err
	} else if !exists {
		return fmt.Errorf("%w: schema %q does not exist: run `chainsink migrate up`", ErrPendingMigrations, m.schema)
	}
	current, latest, err := m.Version(ctx)
	if err != nil {
		return err
	}
	pending, err := m.HasPending(ctx)
	if err != nil {
		return err
	}
	if pending {
		return fmt.Errorf("%w: schema %q is at version %d, this binary needs %d: run `chainsink migrate up`",
			ErrPendingMigrations, m.schema, current, latest)
	}
	return nil
}
