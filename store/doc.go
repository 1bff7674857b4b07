// Package store is chainsink's persistence: everything the product itself reads from and writes to Postgres.
//
// It owns:
//
//   - the connection pool (Open), with safe defaults for application_name, statement_timeout and
//     idle_in_transaction_session_timeout that a database URL may override;
//   - the schema's lifecycle (Migrator), a goose Provider over the embedded migrations, guarded by a Postgres
//     advisory lock so that several instances running `chainsink migrate up` at once are safe, and the
//     deferral of secondary indexes (`chainsink migrate indexes`);
//   - the exactly-once batch write (Writer), which writes any table by its descriptor (package chain), and
//     the partitions of the tables partitioned by block number (Partitioner), created ahead of each batch;
//   - the partition offsets, backfill checkpoints and dead letters, and the reads that `chainsink status`,
//     `redecode` and `dead-letters` need.
//
// The row model itself is package chain (store/chain): pure data and table descriptors, no driver. Code that
// is not the product keeps its own SQL beside it: the benchmark's ceiling and baseline writers and its DDL
// (internal/bench), the demo's summaries (internal/demo), the tests' readers (internal/pgtest). The benchmark
// writes through chain's exported descriptors and store.Copy (its baseline through store.CopySource), so it
// encodes rows exactly as the write path does; none of them reaches into store's internals.
//
// # The batch write
//
// A Batch holds the decoded rows of a contiguous range of offsets [From, To) of one Kafka partition. Writer.Write
// stores it in ONE transaction:
//
//  1. the fence: a compare-and-set of kafka_offsets.next_offset from From to To. When another owner has moved
//     the partition on, nothing matches, the transaction is rolled back and ErrFenced is returned. Under READ
//     COMMITTED a concurrent writer of the same partition blocks on the row lock, re-checks the condition after
//     the first commits and matches nothing, so of two writers starting from the same offset exactly one wins;
//  2. the replacement: the rows that the batch's natural keys already have are deleted (whole blocks for
//     block bundles, single rows for per-item streams), so a message delivered twice, or a newer version of a
//     block after a reorg, never leaves a duplicate. A bundle batch deletes only from the tables that hold one
//     of its heights; an item batch is copied in without deleting by key first, and written again with those
//     deletes when one of its keys turns out to be stored (writeRows says why that is safe);
//  3. binary COPY of every table's rows, streamed straight from the batch's typed slices;
//  4. dead letters: messages that could not be decoded, and messages whose rows Postgres rejects. A rejected
//     write is bisected under savepoints until the offending messages are isolated; the rest is written.
//
// Transient errors (lost connection, serialization failure, admin shutdown) are returned as they are; callers
// retry the same batch, which the fence makes safe. IsTransient classifies them.
package store
