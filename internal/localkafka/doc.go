// Package localkafka runs a Kafka-protocol broker inside the process (franz-go's kfake) for tests, the demo
// and `chainsink-localkafka`, with a small producer to publish fixtures into it.
//
// It speaks the real wire protocol, so chainsink's confluent-kafka-go consumer talks to it exactly as to
// Apache Kafka; what it does not model (replication, real retention and compaction, Kafka's own coordinator
// timing) is listed in docs/testing.md. kfake keeps everything in memory and applies retention only when asked,
// which Broker.ApplyRetention does.
package localkafka
