// Package deadletters replays stored dead letters: it publishes the original Kafka key and value of the rows
// of dead_letters again, so that `chainsink run` consumes them once their cause is fixed, and with
// Config.Delete removes the rows that Kafka has acknowledged. `chainsink dead-letters replay` is its command
// line; listing is a plain store.ListDeadLetters and stays there.
//
// # What a replay guarantees
//
//   - At-least-once publish. Every selected dead letter is published and Replay waits for its delivery
//     report, also after ctx is cancelled, because only the report tells whether the row may go. A message
//     is never lost by a replay, but may reach Kafka twice: when the process dies between the
//     acknowledgement and the delete, the row stays and the next replay publishes it again. That is harmless
//     downstream, where rows are replaced by their natural keys. Use an idempotent producer (NewProducer
//     with ProducerConfig and FixedProducerConfig) so that the client's own retries add no duplicates.
//   - Only acknowledged rows are deleted. With Config.Delete a row is deleted only after Kafka acknowledged
//     its message. A message the producer refused or Kafka did not accept keeps its row and is listed in
//     Result.Failed; that is not an error of Replay, since the rest was replayed. The delete of what was
//     acknowledged runs even when ctx is cancelled, so that an interrupted replay does not leave
//     acknowledged rows behind to be published again.
//   - Id order. Dead letters are published in id order, which within a partition is the order of their
//     original offsets, in chunks of at most Config.PageRows rows and Config.PageBytes of payload. A chunk
//     is fully acknowledged before the next is published, which also bounds the memory a replay holds.
//     With Config.ToTopic the producer's partitioner picks the partition by key, so only messages of one
//     key keep their relative order.
//   - What is replayed is what existed when it started. The newest id at start bounds the replay: dead
//     letters stored while it runs (its own messages failing again, say) are left to the next replay, so a
//     replay always ends. Rows deleted while it runs (by another replay) are skipped.
//
// A replayed message is appended to its partition, newer than everything already there, and every consumer
// group that reads the topic gets it; `chainsink dead-letters replay --help` explains what that means for
// blocks replayed after a reorg.
//
// Replay does not check that the schema is migrated, open the pool or create the producer: the caller owns
// those, which is what lets the tests hand it a fake Producer.
package deadletters
