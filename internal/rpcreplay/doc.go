// Package rpcreplay records a JSON-RPC node's answers and serves them again from memory, so that what
// reads a node (backfill, follow, tokens) can be measured without the node's CPU in the figures, and run
// against a node that is gone. A Recorder is an HTTP proxy in front of a node that keeps every answer; a
// Server answers from what was kept, batches included, and says which requests it has no answer for.
//
// Requests are matched by method and parameters, compared as JSON values (key order and spacing do not
// matter), not by id: a replayed client numbers its requests anew.
package rpcreplay
