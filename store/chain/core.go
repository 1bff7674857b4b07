package chain

// The descriptors of the analyst schema's tables, column for column as migrations/00001_analyst_schema.sql
// (and 00008 and 00009, traces and contracts, and 00011, blocks.filtered) creates them (store's TestCoreTablesMatchMigrations compares them with the catalog).

// BlocksTable describes blocks.
var BlocksTable = (&Table{
	Name: "blocks",
	Columns: columns("number bigint", "hash bytea", "parent_hash bytea", "timestamp timestamptz", "miner bytea",
		"gas_used bigint", "gas_limit bigint", "base_fee_per_gas numeric(78,0)", "transaction_count integer",
		"size bigint", "nonce bytea", "difficulty numeric(78,0)", "total_difficulty numeric(78,0)",
		"extra_data bytea", "mix_hash bytea", "sha3_uncles bytea", "logs_bloom bytea", "transactions_root bytea",
		"state_root bytea", "receipts_root bytea", "withdrawals_root bytea", "withdrawal_count integer",
		"blob_gas_used bigint", "excess_blob_gas bigint", "parent_beacon_block_root bytea", "requests_hash bytea",
		"filtered boolean"),
	Key:   []string{"number"},
	Scope: ScopeBlock,
	Len:   func(r *Rows) int { return len(r.Blocks) },
	Values: func(r *Rows, i int, v []any) {
		b := &r.Blocks[i]
		v[0], v[1], v[2], v[3], v[4], v[5], v[6] = &b.Number, &b.Hash, &b.ParentHash, &b.Timestamp, &b.Miner, &b.GasUsed, &b.GasLimit
		v[7], v[8], v[9], v[10], v[11], v[12], v[13] = b.BaseFeePerGas, &b.TransactionCount, b.Size, &b.Nonce,
			b.Difficulty, b.TotalDifficulty, &b.ExtraData
		v[14], v[15], v[16], v[17], v[18], v[19] = &b.MixHash, &b.Sha3Uncles, &b.LogsBloom, &b.TransactionsRoot, &b.StateRoot, &b.ReceiptsRoot
		v[20], v[21], v[22], v[23], v[24], v[25] = &b.WithdrawalsRoot, b.WithdrawalCount, b.BlobGasUsed, b.ExcessBlobGas,
			&b.ParentBeaconBlockRoot, &b.RequestsHash
		v[26] = &b.Filtered
	},
}).init()

// WithdrawalsTable describes withdrawals.
var WithdrawalsTable = (&Table{
	Name: "withdrawals",
	Columns: columns("block_number bigint", "withdrawal_index bigint", "position integer", "validator_index bigint",
		"address bytea", "amount_gwei numeric(78,0)"),
	Key:   []string{"block_number", "position"},
	Scope: ScopeBlock,
	Len:   func(r *Rows) int { return len(r.Withdrawals) },
	Values: func(r *Rows, i int, v []any) {
		w := &r.Withdrawals[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = &w.BlockNumber, &w.Index, &w.Position, &w.ValidatorIndex, &w.Address, w.AmountGwei
	},
}).init()

// TransactionsTable describes transactions.
var TransactionsTable = (&Table{
	Name: "transactions",
	Columns: columns("block_number bigint", "transaction_index integer", "hash bytea", "block_hash bytea",
		"block_timestamp timestamptz", "from_address bytea", "to_address bytea", "value numeric(78,0)", "gas bigint",
		"gas_price numeric(78,0)", "max_fee_per_gas numeric(78,0)", "max_priority_fee_per_gas numeric(78,0)",
		"max_fee_per_blob_gas numeric(78,0)", "type smallint", "nonce bigint", "input bytea", "method_id bytea",
		"status smallint", "root bytea", "gas_used bigint", "cumulative_gas_used bigint",
		"effective_gas_price numeric(78,0)", "contract_address bytea", "blob_gas_used bigint",
		"blob_gas_price numeric(78,0)"),
	Key:   []string{"block_number", "transaction_index"},
	Scope: ScopeTransaction,
	Len:   func(r *Rows) int { return len(r.Transactions) },
	Values: func(r *Rows, i int, v []any) {
		t := &r.Transactions[i]
		v[0], v[1], v[2], v[3], v[4], v[5], v[6] = &t.BlockNumber, &t.TransactionIndex, &t.Hash, &t.BlockHash, &t.BlockTimestamp,
			&t.FromAddress, &t.ToAddress
		v[7], v[8], v[9], v[10], v[11], v[12] = t.Value, &t.Gas, t.GasPrice, t.MaxFeePerGas,
			t.MaxPriorityFeePerGas, t.MaxFeePerBlobGas
		v[13], v[14], v[15], v[16], v[17], v[18] = &t.Type, &t.Nonce, &t.Input, t.MethodID(), t.Status, &t.Root
		v[19], v[20], v[21], v[22], v[23], v[24] = t.GasUsed, t.CumulativeGasUsed, t.EffectiveGasPrice,
			&t.ContractAddress, t.BlobGasUsed, t.BlobGasPrice
	},
}).init()

// LogsTable describes logs.
var LogsTable = (&Table{
	Name: "logs",
	Columns: columns("block_number bigint", "log_index integer", "transaction_hash bytea",
		"transaction_index integer", "block_timestamp timestamptz", "address bytea", "topic0 bytea", "topic1 bytea",
		"topic2 bytea", "topic3 bytea", "data bytea", "block_hash bytea"),
	Key:   []string{"block_number", "log_index"},
	Scope: ScopeLog,
	Len:   func(r *Rows) int { return len(r.Logs) },
	Values: func(r *Rows, i int, v []any) {
		l := &r.Logs[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = &l.BlockNumber, &l.LogIndex, &l.TransactionHash, &l.TransactionIndex,
			&l.BlockTimestamp, &l.Address
		v[6], v[7], v[8], v[9], v[10] = topic(l.Topics, 0), topic(l.Topics, 1), topic(l.Topics, 2), topic(l.Topics, 3), &l.Data
		v[11] = &l.BlockHash
	},
}).init()

// TokenTransfersTable describes token_transfers.
var TokenTransfersTable = (&Table{
	Name: "token_transfers",
	Columns: columns("block_number bigint", "log_index integer", "batch_index integer", "transaction_hash bytea",
		"block_timestamp timestamptz", "token_address bytea", "from_address bytea", "to_address bytea",
		"token_id numeric(78,0)", "value numeric(78,0)", "standard text"),
	Key:   []string{"block_number", "log_index", "batch_index"},
	Scope: ScopeLog,
	Len:   func(r *Rows) int { return len(r.TokenTransfers) },
	Values: func(r *Rows, i int, v []any) {
		t := &r.TokenTransfers[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = &t.BlockNumber, &t.LogIndex, &t.BatchIndex, &t.TransactionHash,
			&t.BlockTimestamp, &t.TokenAddress
		v[6], v[7], v[8], v[9], v[10] = &t.FromAddress, &t.ToAddress, t.TokenID, t.Value, &t.Standard
	},
}).init()

// EventsTable describes events.
var EventsTable = (&Table{
	Name: "events",
	Columns: columns("block_number bigint", "log_index integer", "transaction_hash bytea",
		"block_timestamp timestamptz", "address bytea", "event_name text", "signature text", "abi_name text",
		"args jsonb"),
	Key:   []string{"block_number", "log_index"},
	Scope: ScopeLog,
	Len:   func(r *Rows) int { return len(r.Events) },
	Values: func(r *Rows, i int, v []any) {
		e := &r.Events[i]
		v[0], v[1], v[2], v[3], v[4] = &e.BlockNumber, &e.LogIndex, &e.TransactionHash, &e.BlockTimestamp, &e.Address
		v[5], v[6], v[7], v[8] = &e.EventName, &e.Signature, &e.ABIName, &e.Args
	},
}).init()

// CallsTable describes calls.
var CallsTable = (&Table{
	Name: "calls",
	Columns: columns("block_number bigint", "transaction_index integer", "transaction_hash bytea",
		"block_timestamp timestamptz", "to_address bytea", "status smallint", "method_name text", "signature text",
		"abi_name text", "args jsonb"),
	Key:   []string{"block_number", "transaction_index"},
	Scope: ScopeTransaction,
	Len:   func(r *Rows) int { return len(r.Calls) },
	Values: func(r *Rows, i int, v []any) {
		c := &r.Calls[i]
		v[0], v[1], v[2], v[3], v[4] = &c.BlockNumber, &c.TransactionIndex, &c.TransactionHash, &c.BlockTimestamp, &c.ToAddress
		v[5], v[6], v[7], v[8], v[9] = c.Status, &c.MethodName, &c.Signature, &c.ABIName, &c.Args
	},
}).init()

// TracesTable describes traces.
var TracesTable = (&Table{
	Name: "traces",
	Columns: columns("block_number bigint", "transaction_index integer", "trace_address integer[]",
		"transaction_hash bytea", "block_timestamp timestamptz", "type text", "trace_type text", "from_address bytea",
		"to_address bytea", "value numeric(78,0)", "gas bigint", "gas_used bigint", "input bytea", "output bytea",
		"error text", "status smallint", "subtraces integer", "block_hash bytea"),
	Key:        []string{"block_number", "transaction_index", "trace_address"},
	Scope:      ScopeTransaction,
	TraceOwned: true,
	Len:        func(r *Rows) int { return len(r.Traces) },
	Values: func(r *Rows, i int, v []any) {
		t := &r.Traces[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = &t.BlockNumber, &t.TransactionIndex, &t.TraceAddress, &t.TransactionHash,
			&t.BlockTimestamp, &t.Type
		v[6], v[7], v[8], v[9], v[10], v[11] = &t.TraceType, &t.FromAddress, &t.ToAddress, t.Value, t.Gas, t.GasUsed
		v[12], v[13], v[14], v[15], v[16], v[17] = &t.Input, &t.Output, optText(t.Error), &t.Status, &t.Subtraces, &t.BlockHash
	},
}).init()

// ContractsTable describes contracts.
var ContractsTable = (&Table{
	Name: "contracts",
	Columns: columns("block_number bigint", "transaction_index integer", "trace_address integer[]", "address bytea",
		"transaction_hash bytea", "block_timestamp timestamptz", "deployer bytea", "code_hash bytea",
		"code_size integer", "is_erc20 boolean", "is_erc721 boolean", "is_erc1155 boolean"),
	Key:        []string{"block_number", "transaction_index", "trace_address"},
	Scope:      ScopeTransaction,
	TraceOwned: true,
	Len:        func(r *Rows) int { return len(r.Contracts) },
	Values: func(r *Rows, i int, v []any) {
		c := &r.Contracts[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = &c.BlockNumber, &c.TransactionIndex, &c.TraceAddress, &c.Address,
			&c.TransactionHash, &c.BlockTimestamp
		v[6], v[7], v[8], v[9], v[10], v[11] = &c.Deployer, &c.CodeHash, c.CodeSize, c.IsERC20, c.IsERC721, c.IsERC1155
	},
}).init()

func optText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CoreTables are the analyst schema's data tables, in the order a batch writes them.
var CoreTables = Schema{BlocksTable, WithdrawalsTable, TransactionsTable, LogsTable, TokenTransfersTable,
	EventsTable, CallsTable, TracesTable, ContractsTable}

// DerivedTables are the core tables computed from logs and transactions with ABIs, which `chainsink redecode`
// rebuilds from what is stored.
var DerivedTables = Schema{TokenTransfersTable, EventsTable, CallsTable}
