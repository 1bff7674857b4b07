// Package decode joins the two pure decoding steps that turn a Kafka message into rows: the message format
// (internal/format: bundle or ethereum-etl JSON into blocks, transactions and logs) and the ABIs (abi: logs into
// events and token transfers, calldata into calls). The pipeline and `chainsink redecode` both use it, so a row
// decoded live and a row re-decoded later are the same.
package decode
