// Package tokens reads what token contracts say of themselves and publishes it, so that analysts see WETH and
// USDC where token_transfers only has 0xc02a… and 0xa0b8…, and can scale an amount by its decimals.
//
// A Reader asks a JSON-RPC node for name(), symbol(), decimals() and totalSupply() of many tokens at once, in
// batch requests of eth_call, all at one block. Tokens do not all follow ERC-20 to the letter, and the
// decoding takes them as they are, the cases of ethereum-etl's export_tokens tests: a string, or a bytes32
// (MKR, SAI, EOS), text padded with NULs, a call that reverts or returns nothing (NULL, never an error), a
// decimals() above 255 (NULL).
//
// Fill is `chainsink tokens --rpc`: it pages through the token addresses of token_transfers that no chain
// read describes yet (store.UnreadTokens), reads them, and publishes each as an ethereum-etl token item to a
// Kafka topic, which `chainsink run` stores exactly once like every other item (store/tokens.go). Going
// through Kafka keeps Postgres written by one path only, and lets the items be replayed or shared.
//
// ParseList reads a token list (the tokenlists.org schema, e.g. @uniswap/default-token-list) for
// `chainsink tokens --list`, which upserts it straight into tokens as rows of source token_list: a list
// seeds the well-known tokens with no node at all, and what the chain says replaces it once read.
package tokens
