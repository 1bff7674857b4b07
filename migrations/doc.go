// Package migrations holds chainsink's schema as goose SQL migrations, embedded into the binary so that
// `chainsink migrate` needs no files on disk. store.Migrator runs them through a goose Provider.
//
// Rules for new migrations: never edit a released file, add a new numbered one; keep each reversible (a
// -- +goose Down section); write unqualified names, because the target schema is chosen through search_path.
package migrations
