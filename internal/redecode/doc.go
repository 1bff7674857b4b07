// Package redecode re-derives the decoded tables (token_transfers, events, calls) of a range of stored blocks
// from the raw logs and transactions already in Postgres, with the current ABIs: `chainsink redecode`.
//
// The range is cut into batches of Config.BatchBlocks blocks. Each batch is one store.ReplaceDerived
// transaction (read and lock the raw rows, decode them, delete what they replace, copy the new rows), so a
// failure leaves the batch as it was and every batch before it done; a transient error (a race with a live
// `chainsink run`, a lost connection) retries the batch. Running the same range twice gives the same rows,
// which makes an interrupted run resumable from the first batch not done (the error says which).
package redecode
