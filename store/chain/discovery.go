package chain

import "time"

// TableRecord is a typed table as the registry (typed_tables) records it: what it was generated from and the
// DDL that creates it. internal/typed makes them; the store applies and compares them.
type TableRecord struct {
	Name      string
	Set       string
	Kind      string // "event" or "call"
	ABI       string
	ABIHash   string
	Signature string
	DDL       string
	AppliedAt time.Time // zero until applied
	// Upgrades are the earlier definitions of the same table that apply brings up to DDL: a table recorded
	// with an Upgrade's From DDL gets its SQL, then DDL is recorded.
	Upgrades []Upgrade
}

// Upgrade turns a table created by an earlier chainsink into what DDL creates now, additively (a column with
// a default, a wider key); no row is dropped.
type Upgrade struct {
	From string // the DDL recorded then
	SQL  string
}

// ChildrenTable describes factory_children (migrations/00006_typed_tables.sql): the contracts that a
// factory's creation event registered for a contract set. It is written like any table of log scope (a
// creation log owns its registrations, and replacing or orphaning the log removes them), and it is what
// Discovery's gate reads.
var ChildrenTable = NewTable("factory_children", ScopeLog, []string{"block_number", "log_index", "set_name"},
	columns("block_number bigint", "log_index integer", "set_name text", "address bytea", "factory_address bytea",
		"transaction_hash bytea", "block_timestamp timestamptz"))

// Positions of ChildrenTable's columns that the store reads.
const (
	ChildSetColumn     = 2
	ChildAddressColumn = 3
)

// ChildRow is the row of ChildrenTable that log l, a creation event of factory l.Address, writes to register
// child for set.
func ChildRow(l *Log, set string, child []byte) []any {
	return []any{int64(l.BlockNumber), l.LogIndex, set, child, l.Address, l.TransactionHash, l.BlockTimestamp}
}

// Discovery describes contracts that become known only as the chain is read: a factory's children. Rows of
// a gated table are candidates, written only when their contract is registered for the table's set in
// ChildrenTable, either already or in the same transaction; and when a batch registers a child, the rows its
// already-stored raw logs and transactions give are derived (Derive) and written in that transaction, so
// that the order in which partitions commit never loses a child's rows. See store.Writer.
type Discovery struct {
	Gated []Gated
	// Derive fills raw.Typed from raw.Logs and raw.Transactions (the gated tables among them are filtered
	// by the store). It must be pure: it runs inside the batch's transaction.
	Derive func(raw *Rows)
}

// Gated is a table whose rows need a registered child of Set.
type Gated struct {
	Table *Table
	Set   string
	// AddressColumn is the position of the contract's address among Table's columns.
	AddressColumn int
}
