// Package e2e holds chainsink's end-to-end tests: the real `chainsink` binary, built once per test run, consumes
// from an in-process Kafka-protocol broker (kfake) into a fresh schema of the real Postgres. They cover real
// mainnet data field by field, the analyst queries of docs/queries.md, crash recovery under SIGKILL, several
// instances in one group, poison messages and a Postgres restart.
package e2e
