// Package chain is chainsink's row model: the typed rows of every table, the failures that send a message to
// dead_letters instead, and the table descriptors that say how rows are keyed, replaced and copied.
//
// It is pure data. Nothing here does I/O or imports a database driver, so the decoders (internal/format,
// internal/decode) can produce rows without depending on Postgres, and `go list -deps` of a decoder never
// shows pgx. The store consumes what this package describes: it writes any Table by its descriptor, so a new
// table (a typed per-event table, traces, tokens) is a descriptor and a migration, not a new code path in the
// exactly-once write.
//
// The package lives under store/ because it is the shape of what the store stores; it imports nothing of
// store, and store imports it.
//
// # Tables
//
// CoreTables are the nine tables of the analyst schema (migrations/00001_analyst_schema.sql; traces and contracts in 00008 and 00009), each with a
// typed slice in Rows. A table known only at run time, such as a table generated from an ABI event, is made
// with NewTable; its rows travel in Rows.Typed as value lists in column order.
//
// Every table has a Scope: which natural key of a message owns its rows. A block owns blocks and withdrawals,
// a transaction (block number, transaction index) owns transactions, calls, traces and contracts, a log (block number, log
// index) owns logs, events and token transfers. Replacing a block replaces every row of every table at that
// height; replacing a single item replaces the rows of the tables in its scope. The first key column of every
// table is its block number, which keeps every replacement an index range scan and the schema ready to be
// partitioned or distributed by block number.
package chain
