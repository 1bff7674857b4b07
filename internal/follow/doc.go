// Package follow is `chainsink follow`: a long-running producer that publishes the chain's blocks as bundles,
// one message per block keyed by its height, and follows the head through reorgs.
//
// It keeps the hashes of the last blocks it published in Postgres (store.SaveFollowHashes). A block whose
// parent is not the kept hash of the height below, or a kept tip the node no longer has, is a reorg: the
// follower walks back, comparing kept hashes with the node's, to the highest common height, publishes a
// tombstone (the height as key, no value) for every kept height above it, forgets those heights, and
// publishes the new chain from there (each height the new chain has replaces its tombstone at once). `chainsink run` replaces a height's
// rows with its newest bundle and removes them on a tombstone, so the tables follow. Each step is written to
// Postgres only after Kafka has acknowledged what it published, so a follower killed at any point finds, on
// restart, either the reorg still to do or the new chain's hashes: a restart in the middle of a reorg finishes
// it, at the cost of messages published twice, which run stores once.
package follow
