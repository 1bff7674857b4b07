// Package abi turns raw EVM logs and transaction input into JSON that can be
// stored in a Postgres jsonb column, and extracts token transfers from logs.
//
// It is pure: no network, no database, no clock. The only I/O is reading ABI
// files (the embedded defaults, LoadDir). That keeps decoding deterministic,
// so the indexer can re-decode stored raw logs later (redecode --abi NAME)
// and get the same bytes, and it lets every rule below be tested against
// fixtures alone. ABI decoding is go-ethereum's accounts/abi (UnpackValues);
// this package chooses the ABI and writes the JSON. The one exception is
// arguments that take one 32-byte word each (integers, addresses, booleans,
// bytes32), which words.go reads word by word into the same Go values,
// integers by go-ethereum's own ReadInteger: about 40 % of decoding a block's logs
// went to UnpackValues' general machinery (FuzzWordsMatchGoEthereum holds
// the two equal). An event or call whose arguments are all such words has its
// JSON written straight from the words (appendWord), with no Go value between,
// and goes through the values wherever a word would not decode
// (FuzzWordJSONMatchesValues holds the two JSONs equal).
//
// # What it decodes
//
//   - Registry.DecodeLog: a log, by (topic0, topic count), into Event.
//   - Registry.DecodeCall: transaction input, by 4-byte selector, into Call.
//   - TokenTransfers: ERC-20, ERC-721 and ERC-1155 movements. It needs no
//     registry: it keys on topic0 and topic count alone.
//
// WETH Deposit and Withdrawal are not token transfers. They wrap and unwrap
// ether and never move WETH between two holders, so they appear only as
// events (DecodeLog), never in TokenTransfers. ethereum-etl's 114 expected
// transfers for block 17173049, where WETH emits 14 Deposit and 11
// Withdrawal logs, agree.
//
// # Registry and lookup rules
//
// Default() holds the ABIs embedded from abis/ (see abis/SOURCES.md). Lookup
// is O(1): a map keyed by (topic0, number of topics) for events and by the
// 4-byte selector for functions, plus one map from bound address to its ABI.
//
//   - The topic count is part of the key because ERC-20 and ERC-721 share
//     topic0 for Transfer and Approval: 3 topics is ERC-20, 4 is ERC-721.
//   - When several ABIs define the same event (same signature and same
//     indexed layout) or the same function signature, only the
//     higher-priority one is kept. Priority is registration order: earlier
//     Add/LoadDir calls win, LoadDir adds in file-name order, and Default
//     registers ERC20, ERC721, ERC1155, WETH9, UniswapV2Pair,
//     UniswapV2Factory, UniswapV2Router02, UniswapV3Pool, UniswapV3Factory,
//     WETH9_uniswap_v2_periphery. So an unbound Transfer reports ABI "ERC20"
//     with keys from/to/value, and an ERC-721 transferFrom call on an unbound
//     address decodes as ERC-20 transferFrom (same selector).
//   - A different layout under the same key (same topic0 and topic count,
//     other indexed arguments; or a selector collision) is kept as a
//     fallback candidate and tried only if the first one fails to decode.
//   - BindContracts ties an address to one ABI. For that address the order is:
//     the bound ABI's named events, then its anonymous events (matched on
//     topic count alone, since they have no topic0), then the global table.
//     Anonymous events are never used for unbound addresses.
//   - DecodeCall with to == nil (contract creation) returns ok=false: the
//     input is init code, not calldata.
//
// Errors: ok=false means no ABI knows the log or selector. err != nil (with
// ok=true) means an ABI matched but the data does not fit it; the caller
// keeps the raw log and counts it. Neither function panics: a panic inside
// go-ethereum is turned into an error.
//
// # JSON rules (Event.Args, Call.Args)
//
// One JSON object whose keys are the ABI parameter names in ABI order. An
// unnamed parameter, or one whose name repeats an earlier one, gets the key
// argN (N = its position), since jsonb keeps only the last of duplicate keys.
//
//   - Every integer type (uint8…uint256, int8…int256) is a decimal string,
//     negative values with a leading '-'. One rule for all widths: jsonb
//     numbers are exact but JSON consumers often parse them as float64, and
//     a per-width rule would make the type depend on the ABI. Values that do
//     not fit the declared width (e.g. 2^112 in a uint112) are an error.
//   - address: lowercase 0x-hex (no EIP-55 checksum, so equality in SQL works).
//   - bytes and bytesN: 0x-hex. function: 0x-hex of its 24 bytes.
//   - bool: true/false.
//   - string: a JSON string; but jsonb rejects \u0000 and invalid UTF-8, so
//     a string containing NUL or invalid UTF-8 is written as the 0x-hex of
//     its bytes instead (a reader cannot tell it from a string that really
//     starts with "0x"; that is the price of never dropping a byte).
//   - arrays: JSON arrays; tuples: objects keyed by component names
//     (unnamed components become argN).
//   - indexed string, bytes, array or tuple arguments: the topic only holds
//     keccak256 of the value, so it is written as that 32-byte 0x-hex hash.
//
// # Safety and cost
//
// A Registry is safe for concurrent use. Decoders read an immutable snapshot
// through an atomic pointer; Add, LoadDir and BindContracts publish a new one.
// Decoding a typical mainnet log costs about half a microsecond and 9
// allocations (BenchmarkDecodeLog: ~0.13 ms for the 271 logs of block
// 17173049), so a 300-log block stays well under a millisecond.
//
// go-ethereum bounds every offset and length by the input size, but an ABI
// with nested dynamic arrays (T[][]) can still make a hostile input expand
// quadratically; none of the embedded ABIs has one in an event.
package abi
