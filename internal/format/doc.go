// Package format turns the value of one Kafka message into the rows of the analyst tables (chain.Rows), or
// into a chain.Failure that sends the message to dead_letters.
//
// It does no I/O: no Kafka, no SQL, no node. Decoding is a pure function of (key, value), so the consumer,
// the backfill producer and the tests share one definition of a valid message; the fuzzers can run it
// millions of times; and a partition's decoder goroutine only ever spends CPU. The store package owns SQL,
// the indexer owns Kafka.
//
// # Formats
//
// Bundle ("bundle") is one message per block. The key is the block number in decimal (BundleKey); the
// value is
//
//	{"block": <eth_getBlockByNumber(n, true) result>, "receipts": <eth_getBlockReceipts(n) result>}
//
// in standard JSON-RPC form: hex quantities, 0x-hex data, full transaction objects (EncodeBundle builds
// it). Every transaction type is accepted (legacy, 1 access list, 2 dynamic fee, 3 blob, 4 set code), and
// receipts from before Byzantium ("root" instead of "status", or "status": null). The message replaces the
// whole block in every table (chain.ReplaceBlocks), which is how a reorg lands.
//
// Required, or the message fails with bad_field:
//
//   - block: number, hash, parentHash, timestamp, miner, gasUsed, gasLimit, transactions (full objects);
//   - each transaction: hash, from, value, gas, nonce, input;
//   - each withdrawal (when the block has the list): index, validatorIndex, address, amount (gwei);
//   - each receipt: transactionHash, transactionIndex, gasUsed, cumulativeGasUsed, logs;
//   - each log: address, topics (at most 4), data, logIndex (unique in the block).
//
// Everything else with a column is optional and NULL when absent: the header's base fee, size, nonce,
// difficulties, mixHash, roots, blob gas, parentBeaconBlockRoot, requestsHash; a transaction's gasPrice and
// fee caps; a receipt's status, root, effectiveGasPrice, contractAddress, blob gas. A transaction without
// "type" (nodes from before EIP-2718) is legacy. Fields without a column (signatures, access lists,
// authorization lists, blob versioned hashes, blooms of receipts, uncles) are not read at all. go-ethereum's
// own types.Receipt encoding writes "root": "0x" and the zero contractAddress for "none"; both are NULL.
//
// The bundle must be consistent, or it fails: receipts_mismatch when the receipts are not exactly one per
// transaction, matched by transactionIndex and confirmed by transactionHash (and, where present, by block
// hash, block number, type, and each log's transaction); bad_field when the key is not the block number, or
// a transaction's blockHash, blockNumber or transactionIndex contradicts its place in the block. Hashes are
// never recomputed: the node's word is taken, and only the cheap cross-references are checked.
//
// Rows: one block (transaction_count is the number of transactions; withdrawal_count is NULL when the block
// has no withdrawals list, i.e. before Shanghai), its withdrawals in order (position is the list index),
// its transactions with their receipt's columns merged in, and its logs (log_index is the block-level
// logIndex). The block timestamp is copied into transactions and logs.
//
// EthereumETL ("ethereum-etl") is what `ethereumetl stream --output kafka` publishes: one JSON item per
// message, no key, and a "type" that says what it is. Blocks, transactions (with their receipt_* fields) and
// logs are stored, each replacing only its own row (chain.ReplaceRows); token_transfer, trace, contract and
// token items are skipped (empty rows, no failure), since chainsink decodes transfers from logs itself; any
// other type fails with unknown_item_type. Field names are ethereum-etl's (from_address, receipt_status,
// log_index, ...). Integers are JSON numbers of any size, read exactly (never through float64) and refused
// when negative, fractional or above 2^256-1. Required:
//
//   - block: number, hash, parent_hash, timestamp, miner, gas_used, gas_limit, transaction_count;
//   - transaction: hash, block_number, block_hash, block_timestamp, transaction_index, from_address, value,
//     gas, nonce, input;
//   - log: block_number, block_timestamp, log_index, transaction_hash, transaction_index, address, topics,
//     data.
//
// An ethereum-etl block has no mix hash, and its withdrawals list is always there ([] before Shanghai), so
// withdrawal_count is set only when withdrawals_root is, as for a bundle.
//
// # Failures
//
// Decode never panics (a panic would be a chainsink bug; it is caught and reported as internal_error). A
// failure's Reason is one of a few stable words, for dashboards; its Err says what and where, with the JSON
// path of the field (a *FieldError, e.g. "block.transactions[3].gas: out of range: above
// 9223372036854775807, the largest Postgres bigint"):
//
//   - empty: the value is empty, and it is not a bundle tombstone (a height key with no value, which decodes
//     to Rows.Tombstones);
//   - too_large: the value is above the size limit (MaxMessageBytes unless Decoder says otherwise), and is
//     not parsed;
//   - invalid_json: the value is not JSON (the error gives the byte offset);
//   - bad_field: JSON, but a field is missing, of the wrong JSON type, malformed hex, above its Go type's
//     range (hexutil.Big: 256 bits), or above its column's range (bigint, integer, smallint, a timestamp
//     after 294276-12-31, a status other than 0 and 1, a fifth topic), or the key is not the block number;
//   - receipts_mismatch: a bundle's receipts are not its transactions';
//   - unknown_item_type: an ethereum-etl type that is neither stored nor known to be skippable.
//
// The column checks are here, not left to Postgres, because Postgres refuses a whole COPY for one bad value:
// the store would then have to bisect the batch to find the message, where a decode failure costs nothing.
//
// The rows of a message never alias the key or the value, so the caller may reuse message buffers. They do
// alias each other (every transaction of a bundle shares the block hash) and the decoded wire structs, so
// they are read-only.
//
// # JSON
//
// Messages are parsed with github.com/go-json-experiment/json/v1: encoding/json's API and semantics on the
// implementation that becomes encoding/json in Go 1.27 (encoding/json/v2, GOEXPERIMENT=jsonv2 in Go 1.25 and
// 1.26). It parses a mainnet bundle in about two thirds of encoding/json's time (docs/performance.md), and
// it validates while it decodes instead of in a separate pass. Once chainsink builds with Go 1.27 the
// import goes back to encoding/json, with no change of behaviour.
//
// Bundles and ethereum-etl's transaction and log items take a faster path first (fastwire.go): their wire
// structs are filled by a scanner of the JSON grammar over the message's bytes, with no reflection, and their
// hex is decoded into a few slabs per message. It gives up on anything but the plain shape a node or
// ethereum-etl writes (escapes included), and
// the message is then decoded by the path above, which stays the reference for what is accepted and how a
// failure is explained; the fuzz targets hold the two equal on every input the fast path takes.
//
// BundleFromETLItems rebuilds a bundle from ethereum-etl items; it is for tests, benchmarks and demos only.
package format
