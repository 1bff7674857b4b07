// Package backfill publishes a range of blocks from a JSON-RPC node into a Kafka topic as bundle messages
// (docs/formats.md), one per block keyed by its number, so that `chainsink run` indexes history the same way
// it indexes the live chain.
//
// Blocks are fetched in batch requests (BatchSize blocks each, Concurrency in flight) with capped exponential
// backoff, encoded with format.EncodeBundle and checked with format.Decode before they are published, so that
// a node returning inconsistent data fails the backfill instead of poisoning the topic. A block counts as done
// on its delivery report; the contiguous low watermark of done blocks is checkpointed in Postgres
// (backfill_checkpoints) every second, so a re-run of the same job continues without gaps. Blocks above the
// watermark that were delivered before an interruption are published again, which is harmless: a bundle
// replaces its whole block.
package backfill
