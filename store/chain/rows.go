package chain

import (
	"math/big"
	"time"
)

// The row types mirror the analyst tables column for column. Byte slices are bytea (nil is NULL), *big.Int is
// numeric(78,0) (nil is NULL), pointers to integers are nullable integer columns.

// Block is a row of blocks.
type Block struct {
	Number                uint64
	Hash                  []byte
	ParentHash            []byte
	Timestamp             time.Time
	Miner                 []byte
	GasUsed               uint64
	GasLimit              uint64
	BaseFeePerGas         *big.Int
	TransactionCount      int32
	Size                  *int64
	Nonce                 []byte
	Difficulty            *big.Int
	TotalDifficulty       *big.Int
	ExtraData             []byte
	MixHash               []byte
	Sha3Uncles            []byte
	LogsBloom             []byte
	TransactionsRoot      []byte
	StateRoot             []byte
	ReceiptsRoot          []byte
	WithdrawalsRoot       []byte
	WithdrawalCount       *int32
	BlobGasUsed           *int64
	ExcessBlobGas         *int64
	ParentBeaconBlockRoot []byte
	RequestsHash          []byte
	// Filtered marks a block of a filtered bundle: only the configuration's logs and calls of it are stored,
	// not all of its transactions and logs.
	Filtered bool
}

// Withdrawal is a row of withdrawals.
type Withdrawal struct {
	BlockNumber    uint64
	Index          uint64
	Position       int32
	ValidatorIndex uint64
	Address        []byte
	AmountGwei     *big.Int
}

// Transaction is a row of transactions, receipt fields included.
type Transaction struct {
	BlockNumber          uint64
	TransactionIndex     int32
	Hash                 []byte
	BlockHash            []byte
	BlockTimestamp       time.Time
	FromAddress          []byte
	ToAddress            []byte
	Value                *big.Int
	Gas                  uint64
	GasPrice             *big.Int
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
	MaxFeePerBlobGas     *big.Int
	Type                 int16
	Nonce                uint64
	Input                []byte
	Status               *int16
	Root                 []byte
	GasUsed              *int64
	CumulativeGasUsed    *int64
	EffectiveGasPrice    *big.Int
	ContractAddress      []byte
	BlobGasUsed          *int64
	BlobGasPrice         *big.Int
}

// MethodID is the 4-byte function selector, or nil when the input is too short to have one.
func (t *Transaction) MethodID() []byte {
	if len(t.Input) < 4 {
		return nil
	}
	return t.Input[:4]
}

// Log is a row of logs. Topics beyond the fourth cannot exist in the EVM.
type Log struct {
	BlockNumber      uint64
	LogIndex         int32
	TransactionHash  []byte
	TransactionIndex int32
	BlockTimestamp   time.Time
	Address          []byte
	Topics           [][]byte
	Data             []byte
	// BlockHash is the hash of the block the log is in; nil when the input does not say (an ethereum-etl
	// log item without block_hash). It is what removes a reorg's orphaned logs (store.Writer).
	BlockHash []byte
}

// TokenTransfer is a row of token_transfers.
type TokenTransfer struct {
	BlockNumber     uint64
	LogIndex        int32
	BatchIndex      int32
	TransactionHash []byte
	BlockTimestamp  time.Time
	TokenAddress    []byte
	FromAddress     []byte
	ToAddress       []byte
	TokenID         *big.Int
	Value           *big.Int
	Standard        string
}

// Event is a row of events: a log decoded with an ABI.
type Event struct {
	BlockNumber     uint64
	LogIndex        int32
	TransactionHash []byte
	BlockTimestamp  time.Time
	Address         []byte
	EventName       string
	Signature       string
	ABIName         string
	Args            []byte // JSON object
}

// Call is a row of calls: a transaction's input decoded with an ABI.
type Call struct {
	BlockNumber      uint64
	TransactionIndex int32
	TransactionHash  []byte
	BlockTimestamp   time.Time
	ToAddress        []byte
	Status           *int16
	MethodName       string
	Signature        string
	ABIName          string
	Args             []byte // JSON object
}

// Trace is a row of traces: one call frame of a transaction's execution as the node's callTracer reports it
// (the transaction's own call, and every call, create and selfdestruct it made, at any depth).
type Trace struct {
	BlockNumber      uint64
	TransactionIndex int32
	// TraceAddress is the frame's path from the transaction's own frame: [] for it, [0] for its first
	// subcall, [0 2] for the third subcall of that one; Parity's trace_address.
	TraceAddress    []int32
	TransactionHash []byte
	BlockTimestamp  time.Time
	// Type is the callTracer's type in lower case: call, staticcall, delegatecall, callcode, create, create2,
	// selfdestruct.
	Type string
	// TraceType is Parity's and ethereum-etl's class of it: call, create or suicide.
	TraceType   string
	FromAddress []byte
	ToAddress   []byte
	Value       *big.Int
	Gas         *int64
	GasUsed     *int64
	Input       []byte
	Output      []byte
	Error       string
	// Status is 0 when the frame or any frame above it failed (its effects were reverted), else 1.
	Status    int16
	Subtraces int32
	// BlockHash is the hash of the trace's block: what finds a reorg's orphaned traces when they arrived as
	// items of their own (ethereum-etl), apart from their transaction.
	BlockHash []byte
}

// Contract is a row of contracts: a contract created on chain.
type Contract struct {
	BlockNumber      uint64
	TransactionIndex int32
	// TraceAddress is the create frame's (see Trace); [] for a contract the transaction itself created.
	TraceAddress    []int32
	Address         []byte
	TransactionHash []byte
	BlockTimestamp  time.Time
	Deployer        []byte
	// CodeHash and CodeSize are nil, and the interface flags too, when the deployed code is not known (no
	// traces in the input).
	CodeHash                     []byte
	CodeSize                     *int32
	IsERC20, IsERC721, IsERC1155 *bool
}

// Token is a row of tokens: what a token contract says of itself (name(), symbol(), decimals(),
// totalSupply()), or what a token list says of it. Unlike every other row it belongs to an address, not to a
// block: a reorg does not remove it, and of two rows for one address the store keeps the better (see
// TokenSource).
type Token struct {
	Address []byte
	// Name and Symbol are nil when the contract's call reverted or returned something that is not a string
	// (nor a bytes32); text that the contract padded with NULs has them removed.
	Name, Symbol *string
	// Decimals is nil when decimals() reverted or returned a value above 255, which no token means.
	Decimals    *int32
	TotalSupply *big.Int
	// Standard is "erc20", "erc721" or "" when not known.
	Standard string
	// BlockNumber is the block the contract was read at; nil for a token list's entry or an item without one.
	BlockNumber *uint64
	Source      TokenSource
}

// TokenSource says where a token row comes from, which decides which of two rows for one address is kept:
// what the chain said wins over a token list, and of two reads of the chain the one at the earlier block
// ("total supply as first read").
type TokenSource string

const (
	// TokenFromChain is a row read from the contract by eth_call (an ethereum-etl token item).
	TokenFromChain TokenSource = "chain"
	// TokenFromList is a row taken from a token list (tokenlists.org format): no block, no total supply.
	TokenFromList TokenSource = "token_list"
)

// Rows is everything one message decodes into.
type Rows struct {
	Blocks         []Block
	Withdrawals    []Withdrawal
	Transactions   []Transaction
	Logs           []Log
	TokenTransfers []TokenTransfer
	Events         []Event
	Calls          []Call
	Traces         []Trace
	Contracts      []Contract
	// Typed holds the rows of tables known only at run time (see NewTable), by table; each row is its values
	// in the table's column order. Nil when there are none, which is the common case.
	Typed map[*Table][][]any
	// Tokens are token metadata, written by address (see Token), not replaced with a block.
	Tokens []Token
	// Tombstones are heights whose every stored row, in every table, is removed with nothing written in their
	// place: a producer says so when the chain became shorter than what it had published (a bundle tombstone).
	Tombstones []uint64
}

// Len is the number of rows of all tables.
func (r *Rows) Len() int {
	n := len(r.Blocks) + len(r.Withdrawals) + len(r.Transactions) + len(r.Logs) +
		len(r.TokenTransfers) + len(r.Events) + len(r.Calls) + len(r.Traces) + len(r.Contracts) + len(r.Tokens)
	for _, t := range r.Typed {
		n += len(t)
	}
	return n
}

// Add appends o's rows to r.
func (r *Rows) Add(o *Rows) {
	r.Blocks = append(r.Blocks, o.Blocks...)
	r.Withdrawals = append(r.Withdrawals, o.Withdrawals...)
	r.Transactions = append(r.Transactions, o.Transactions...)
	r.Logs = append(r.Logs, o.Logs...)
	r.TokenTransfers = append(r.TokenTransfers, o.TokenTransfers...)
	r.Events = append(r.Events, o.Events...)
	r.Calls = append(r.Calls, o.Calls...)
	r.Traces = append(r.Traces, o.Traces...)
	r.Contracts = append(r.Contracts, o.Contracts...)
	for t, rows := range o.Typed {
		r.AddTyped(t, rows...)
	}
	r.Tokens = append(r.Tokens, o.Tokens...)
	r.Tombstones = append(r.Tombstones, o.Tombstones...)
}

// Empty reports whether r neither writes nor removes anything.
func (r *Rows) Empty() bool { return r.Len() == 0 && len(r.Tombstones) == 0 }

// AddTyped appends rows of the run-time table t.
func (r *Rows) AddTyped(t *Table, rows ...[]any) {
	if len(rows) == 0 {
		return
	}
	if r.Typed == nil {
		r.Typed = map[*Table][][]any{}
	}
	r.Typed[t] = append(r.Typed[t], rows...)
}

// Counts is a number of rows per table name.
type Counts map[string]int64

// Position is a log's or a transaction's place in the chain: its block and its index in the block.
type Position struct {
	Block uint64
	Index int32
}

// TypedPositions adds to dst the positions that r's typed tables hold: with ScopeLog, the logs of the typed
// event tables (factory registrations are not among them); with ScopeTransaction, the transactions whose
// own call (trace address {}, not an internal call) a typed call table holds.
func (r *Rows) TypedPositions(scope Scope, dst map[Position]struct{}) {
	for t, rows := range r.Typed {
		if !t.runTime || t.Scope != scope || t == ChildrenTable {
			continue
		}
		for _, row := range rows {
			if k, ok := t.keyOf(row); ok && (scope != ScopeTransaction || k.Frame == "{}") {
				dst[Position{k.Block, k.Index}] = struct{}{}
			}
		}
	}
}
