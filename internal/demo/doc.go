// Package demo runs chainsink end to end on a laptop: a local Kafka-protocol broker is fed with real mainnet
// data from testdata/, the real `chainsink run` binary indexes it into the local PostgreSQL, and a summary of
// the stored rows is printed. Then the same for a local chain (LocalChain: go-ethereum's simulated backend
// with Uniswap V2 and V3 deployed and used), whose pairs and pools are found through their factories, into
// the schema local_chain: `chainsink backfill`, `run` and `verify --rpc`. It drives the binary as an operator
// would (flags, signals, /metrics), so the demo shows the product, not a test double.
package demo
