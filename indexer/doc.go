// Package indexer consumes Kafka partitions and writes them to Postgres exactly once.
//
// # Shape
//
// One goroutine owns the confluent-kafka-go consumer: it polls, routes each message to the worker of its
// partition, pauses a partition whose worker queue is full and resumes it when the worker has drained, and
// handles rebalances. It never waits on Postgres, except when partitions are assigned (their starting offsets
// are read from kafka_offsets before the assignment is accepted) and when a fenced partition is restarted.
//
// Each assigned partition has a worker made of two goroutines joined by an unbuffered channel: the decoder
// turns queued messages into a store.Batch, and the committer writes the previous batch with store.WriteBatch.
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
//   - Transient Postgres errors: the same batch is retried with capped exponential backoff, forever, while the
//     partition is owned.
//   - Undecodable messages and rows Postgres rejects: dead letters, in the batch's own transaction.
//   - Anything else (missing table, permission denied): the indexer stops with the error.
package indexer
