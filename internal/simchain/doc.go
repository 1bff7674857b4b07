// Package simchain runs a go-ethereum simulated chain that serves JSON-RPC over HTTP and WebSocket on a local
// port, and sends it signed transactions: the local node of the demo's factory stage, of the end-to-end
// tests and of the benchmarks' RPC scenarios. It is the real node software (go-ethereum's own backend,
// mining a block on each Commit), so what chainsink reads from it is what it reads from a mainnet node.
//
// Start is the plain node (go-ethereum's simulated.NewBackend); OnFreePort starts any other assembly (the
// end-to-end tests' node with the tracers' debug API) on a free port, retrying a lost race for it. Send signs
// and submits a transaction and returns once the pool holds it, so that the next Send of the same account
// reads the next nonce; blocks are mined by the backend's Commit. LoadArtifact and LoadABI read the compiled
// contracts of testdata/contracts and the built-in ABIs of the contracts that factories deploy.
package simchain
