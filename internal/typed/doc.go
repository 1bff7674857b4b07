// Package typed turns a configuration's contract sets (internal/config, docs/typed-tables.md) into typed
// tables: one table per event and per function of each set, with snake_case names and columns, Postgres
// types chosen from the ABI types, DDL and COMMENTs naming the ABI signature each came from (Compile,
// CompileYAML, Tables and Table).
//
// Read it in this order:
//   - typed.go compiles the sets against the ABIs of an abi.Registry: names (reserved words, collisions,
//     overloads), types, the DDL that `chainsink tables` plans and applies, and the ABI hash of each table
//     that lets a changed ABI be refused instead of silently altering a table.
//   - derive.go makes the rows of a decoded log (AddLog), transaction (AddTransaction) or call frame
//     (AddTrace): a row per table whose event or function it is, and for a factory's creation event the
//     child's registration. Rows of factory sets are candidates from any address; the store keeps those of
//     registered children (chain.Discovery), in the same transaction that registers them.
//   - filter.go is filtered mode's selection (`chainsink backfill --config`): what to ask a node for
//     (eth_getLogs queries of the sets and of their factories) and which logs and calls of its answer to keep.
//
// Like the decoders it is pure: no I/O, no database driver. `run`, `redecode` and backfill share it
// through internal/decode, so that every path stores the same rows.
package typed
