// Package indexer consumes Kafka partitions and writes them to Postgres exactly once.
//
// # Using it
//
//	ix, err := indexer.New(indexer.Config{
//		Brokers: "kafka:9092", Group: "chainsink",
//		Topics:  []indexer.Topic{{Name: "blocks", Format: myFormat}},
//	}, pool, logger, metrics)
//	if err := ix.Start(ctx); err != nil { … } // cancelling ctx is the hard stop
//	…
//	err = ix.Stop(shutdownCtx)                 // graceful: commit what is held, leave the group
//
// The package is public, and usable from outside this module, on purpose: it is the piece that turns "a
// decoder of my messages" into exactly-once tables, and a team with its own wire format (protobuf, a
// filtered bundle) should not need a fork to get that. So everything it takes is a small interface or a
// value: a Format (name, replacement mode, Decode) per topic instead of a name looked up in an internal
// registry, so the mode can never drift from the decoder; Metrics, which chainsink implements with Prometheus
// in internal/metrics and which may be nil; store.DB, which a pgx pool satisfies; and Config.Tables for rows
// of tables described at run time (store/chain). What it writes and how is store's Writer; what it decodes
// with is the caller's. `chainsink run` is one such caller (internal/cli).
//
// It follows river's lifecycle: Start(ctx) once, where cancelling ctx stops everything at once (open batches
// are dropped, which the fence makes harmless); Stop(ctx), idempotent and safe before Start, stops polling,
// lets each worker commit what it holds until ctx ends, then leaves the group.
//
// # Shape
//
// One goroutine owns the confluent-kafka-go consumer: it polls, routes each message to the worker of its
// partition, and handles rebalances. A worker's queue is full while its last batch commits; when the queues
// together are full the loop waits up to Config.PauseAfter for room, which leaves what librdkafka fetched ahead
// where it is, and only then pauses a full queue's partition (which drops it, to be fetched again on the
// resume). It never queries Postgres, except
// when partitions are assigned (their starting offsets are read from kafka_offsets before the assignment is
// accepted) and when a fenced partition is restarted.
//
// Each assigned partition has a worker made of two goroutines joined by an unbuffered channel: the decoder
// turns queued messages into a store.Batch, and the committer writes the previous batch with store.Writer.
// So decoding of batch N+1 overlaps the commit of batch N, and a batch keeps growing (up to its row and byte
// limits) while the committer is busy: batches are small when the worker is caught up and large when behind.
//
// # Offsets
//
// Postgres is the source of truth. On assignment, each partition starts at its stored next offset, or at the
// consumer's reset point when it has none; the assignment passes those offsets to (Incremental)Assign, so
// Kafka's own committed offsets are never used as a starting point. After each commit the offset is also
// stored in the consumer for librdkafka's periodic auto-commit, best effort, only so kafka-consumer-groups and
// Burrow show lag.
//
// # Failures
//
//   - Revoked or lost partitions: the worker is stopped before the rebalance callback returns (a revoked one
//     gets a short flush first; a lost one is cancelled at once). The fence makes both safe.
//   - Fenced batch (another owner advanced the offset): the worker stops, the partition is paused, re-read from
//     Postgres, seeked to the stored offset and restarted; a zombie that really lost the partition is then
//     revoked by the group.
//   - Transient Postgres errors: the same batch is retried with capped, jittered exponential backoff
//     (internal/retry), forever, while the partition is owned.
//   - Undecodable messages and rows Postgres rejects: dead letters, in the batch's own transaction.
//   - Anything else (missing table, permission denied): the indexer stops with the error.
package indexer
