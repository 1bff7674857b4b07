package format

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"

	"github.com/chainsink/chainsink/store/chain"
)

// ethereum-etl item types.
const (
	etlTypeBlock         = "block"
	etlTypeTransaction   = "transaction"
	etlTypeLog           = "log"
	etlTypeTokenTransfer = "token_transfer"
	etlTypeTrace         = "trace"
	etlTypeContract      = "contract"
	etlTypeToken         = "token"
)

// etlInt is an ethereum-etl integer: a JSON number of any size (Python ints), e.g. total_difficulty is above
// 2^64. It is parsed from the literal, never through float64, which would round it.
type etlInt struct {
	set   bool
	isBig bool    // the value does not fit in u
	u     uint64  // the value, unless isBig
	b     big.Int // the value when isBig; the column value otherwise (see big)
}

// maxETLDigits is the length of 2^256-1 in decimal. Longer literals are refused before parsing, so that a
// megabyte of digits cannot make big.Int work for nothing.
const maxETLDigits = 78

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func (n *etlInt) UnmarshalJSON(data []byte) error {
	n.set, n.isBig, n.u = false, false, 0
	if string(data) == "null" {
		return nil
	}
	// encoding/json has checked the syntax: data is one whole JSON value.
	bad := func(what string) error {
		return &json.UnmarshalTypeError{Value: what, Type: etlIntType}
	}
	switch c := data[0]; {
	case c == '-':
		return bad("negative number " + clip(data))
	case c < '0' || c > '9':
		return bad(jsonKind(c))
	case bytes.ContainsAny(data, ".eE"):
		return bad("number " + clip(data) + " with a fraction or exponent")
	case len(data) > maxETLDigits:
		return bad("number of " + strconv.Itoa(len(data)) + " digits")
	case len(data) <= 19: // always fits in a uint64
		u, err := strconv.ParseUint(string(data), 10, 64)
		if err != nil {
			return bad("number " + clip(data))
		}
		n.set, n.u = true, u
		return nil
	}
	_, ok := n.b.SetString(string(data), 10)
	switch {
	case !ok:
		return bad("number " + clip(data))
	case n.b.Cmp(maxUint256) > 0:
		return bad("number " + clip(data) + " above 2^256-1")
	case n.b.IsUint64():
		n.set, n.u = true, n.b.Uint64()
	default:
		n.set, n.isBig = true, true
	}
	return nil
}

// bigIn is the value as a numeric column value. It points into n, which the rows then keep alive: the item
// struct is one allocation, where a new big.Int per column would be two. A value of one word is kept in w
// (of length 1, from the caller's item) rather than in a slice that SetUint64 allocates; with w nil, or a
// value above a word (32-bit platforms), SetUint64 it is.
func (n *etlInt) bigIn(w []big.Word) *big.Int {
	switch {
	case n.isBig:
	case w != nil && uint64(big.Word(n.u)) == n.u:
		w[0] = big.Word(n.u)
		n.b.SetBits(w) // normalised: zero keeps no word
	default:
		n.b.SetUint64(n.u)
	}
	return &n.b
}

func jsonKind(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	}
	return "value"
}

func clip(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// etlUint returns n as a uint64 of at most limit, or fails with rangeErr.
func (c *conv) etlUint(field string, n *etlInt, limit uint64, rangeErr error) (uint64, bool) {
	if !n.set {
		c.fail(field, errMissing)
		return 0, false
	}
	if n.isBig || n.u > limit {
		c.fail(field, rangeErr)
		return 0, false
	}
	return n.u, true
}

func (c *conv) etlInt64(field string, n *etlInt) uint64 {
	v, _ := c.etlUint(field, n, math.MaxInt64, errNotInt64)
	return v
}

func (c *conv) etlInt32(field string, n *etlInt) int32 {
	v, _ := c.etlUint(field, n, math.MaxInt32, errNotInt32)
	return int32(v)
}

func (c *conv) etlOptInt64(field string, n *etlInt, slot *int64) *int64 {
	if !n.set {
		return nil
	}
	v, ok := c.etlUint(field, n, math.MaxInt64, errNotInt64)
	if !ok {
		return nil
	}
	*slot = int64(v)
	return slot
}

func (c *conv) etlTime(field string, n *etlInt) time.Time {
	v, ok := c.etlUint(field, n, math.MaxInt64, errTime)
	if !ok {
		return time.Time{}
	}
	return c.unix(field, v)
}

func (c *conv) etlBig(field string, n *etlInt) *big.Int {
	return c.etlBigIn(field, n, nil)
}

// etlBigIn is etlBig with w for the value's word (see etlInt.bigIn).
func (c *conv) etlBigIn(field string, n *etlInt, w []big.Word) *big.Int {
	if !n.set {
		c.fail(field, errMissing)
		return nil
	}
	return n.bigIn(w)
}

func etlOptBig(n *etlInt) *big.Int {
	return etlOptBigIn(n, nil)
}

// etlOptBigIn is etlOptBig with w for the value's word (see etlInt.bigIn).
func etlOptBigIn(n *etlInt, w []big.Word) *big.Int {
	if !n.set {
		return nil
	}
	return n.bigIn(w)
}

func (c *conv) etlType(field string, n *etlInt) int16 {
	if !n.set {
		return 0 // as in the RPC: no type is a legacy transaction
	}
	v, _ := c.etlUint(field, n, math.MaxInt16, errNotInt16)
	return int16(v)
}

func (c *conv) etlStatus(field string, n *etlInt) *int16 {
	return c.etlStatusIn(field, n, new(int16))
}

// etlStatusIn is etlStatus keeping the value in *slot.
func (c *conv) etlStatusIn(field string, n *etlInt, slot *int16) *int16 {
	if !n.set {
		return nil
	}
	v, ok := c.etlUint(field, n, 1, errStatus)
	if !ok {
		return nil
	}
	*slot = int16(v)
	return slot
}

// The item shapes, field names as ethereum-etl's exporters write them. Fields without a column (item_id,
// item_timestamp, receipt_l1_*, blob_versioned_hashes, block_hash of a log) are not declared, so they are
// skipped unjudged.

type etlBlock[W any] struct {
	Type             string  `json:"type"`
	Number           etlInt  `json:"number"`
	Hash             hash    `json:"hash"`
	ParentHash       hash    `json:"parent_hash"`
	Nonce            data    `json:"nonce"`
	Sha3Uncles       hash    `json:"sha3_uncles"`
	LogsBloom        data    `json:"logs_bloom"`
	TransactionsRoot hash    `json:"transactions_root"`
	StateRoot        hash    `json:"state_root"`
	ReceiptsRoot     hash    `json:"receipts_root"`
	Miner            address `json:"miner"`
	Difficulty       etlInt  `json:"difficulty"`
	TotalDifficulty  etlInt  `json:"total_difficulty"`
	Size             etlInt  `json:"size"`
	ExtraData        data    `json:"extra_data"`
	GasLimit         etlInt  `json:"gas_limit"`
	GasUsed          etlInt  `json:"gas_used"`
	Timestamp        etlInt  `json:"timestamp"`
	TransactionCount etlInt  `json:"transaction_count"`
	BaseFeePerGas    etlInt  `json:"base_fee_per_gas"`
	WithdrawalsRoot  hash    `json:"withdrawals_root"`
	Withdrawals      []W     `json:"withdrawals"`
	BlobGasUsed      etlInt  `json:"blob_gas_used"`
	ExcessBlobGas    etlInt  `json:"excess_blob_gas"`
}

type etlWithdrawal struct {
	Index          etlInt  `json:"index"`
	ValidatorIndex etlInt  `json:"validator_index"`
	Address        address `json:"address"`
	Amount         etlInt  `json:"amount"`
}

type etlTx struct {
	Type                     string  `json:"type"`
	Hash                     hash    `json:"hash"`
	Nonce                    etlInt  `json:"nonce"`
	TransactionIndex         etlInt  `json:"transaction_index"`
	FromAddress              address `json:"from_address"`
	ToAddress                address `json:"to_address"`
	Value                    etlInt  `json:"value"`
	Gas                      etlInt  `json:"gas"`
	GasPrice                 etlInt  `json:"gas_price"`
	Input                    data    `json:"input"`
	BlockTimestamp           etlInt  `json:"block_timestamp"`
	BlockNumber              etlInt  `json:"block_number"`
	BlockHash                hash    `json:"block_hash"`
	MaxFeePerGas             etlInt  `json:"max_fee_per_gas"`
	MaxPriorityFeePerGas     etlInt  `json:"max_priority_fee_per_gas"`
	MaxFeePerBlobGas         etlInt  `json:"max_fee_per_blob_gas"`
	TransactionType          etlInt  `json:"transaction_type"`
	ReceiptCumulativeGasUsed etlInt  `json:"receipt_cumulative_gas_used"`
	ReceiptGasUsed           etlInt  `json:"receipt_gas_used"`
	ReceiptContractAddress   address `json:"receipt_contract_address"`
	ReceiptRoot              data    `json:"receipt_root"`
	ReceiptStatus            etlInt  `json:"receipt_status"`
	ReceiptEffectiveGasPrice etlInt  `json:"receipt_effective_gas_price"`
	ReceiptBlobGasUsed       etlInt  `json:"receipt_blob_gas_used"`
	ReceiptBlobGasPrice      etlInt  `json:"receipt_blob_gas_price"`
}

type etlLog struct {
	Type             string  `json:"type"`
	LogIndex         etlInt  `json:"log_index"`
	TransactionHash  hash    `json:"transaction_hash"`
	TransactionIndex etlInt  `json:"transaction_index"`
	Address          address `json:"address"`
	Data             data    `json:"data"`
	Topics           *topics `json:"topics"`
	BlockNumber      etlInt  `json:"block_number"`
	BlockTimestamp   etlInt  `json:"block_timestamp"`
	BlockHash        hash    `json:"block_hash"`
}

// etlToken is ethereum-etl's token item (export_tokens, stream's token items), which `chainsink tokens`
// publishes too. ethereum-etl writes "" and 0 where a call failed; chainsink writes null.
type etlToken struct {
	Type        string  `json:"type"`
	Address     address `json:"address"`
	Symbol      *string `json:"symbol"`
	Name        *string `json:"name"`
	Decimals    etlInt  `json:"decimals"`
	TotalSupply etlInt  `json:"total_supply"`
	BlockNumber etlInt  `json:"block_number"`
	// Standard is chainsink's addition (erc20, erc721, erc1155); ethereum-etl does not write it.
	Standard *string `json:"standard"`
}

func decodeETL(value []byte) (chain.Rows, *decodeError) {
	typ, sniffed := sniffType(value)
	if !sniffed {
		var ok bool
		if typ, ok = fastItemType(value); !ok {
			var err *decodeError
			if typ, err = itemType(value); err != nil {
				return chain.Rows{}, err
			}
		}
	}
	var decode func([]byte) (chain.Rows, *decodeError)
	switch typ {
	case etlTypeBlock:
		decode = decodeETLBlock
	case etlTypeTransaction:
		decode = decodeETLTransaction
	case etlTypeLog:
		decode = decodeETLLog
	case etlTypeToken:
		decode = decodeETLToken
	case etlTypeTrace:
		decode = decodeETLTrace
	case etlTypeContract:
		decode = decodeETLContract
	case etlTypeTokenTransfer:
		// chainsink decodes token transfers itself, from the logs and with the same rules for every format.
		return chain.Rows{}, nil
	default:
		return chain.Rows{}, failWith(ReasonUnknownItemType, fmt.Errorf("item type %q is not one of %s, %s, %s, %s, %s "+
			"(stored), %s (checked) or %s (skipped)", clip([]byte(typ)), etlTypeBlock, etlTypeTransaction, etlTypeLog,
			etlTypeToken, etlTypeTrace, etlTypeContract, etlTypeTokenTransfer))
	}
	rows, err := decode(value)
	if err != nil && sniffed {
		// The item's first "type" chose the decoder, but encoding/json keeps the last: an item with two types
		// fails on some field of the other type's shape, which would be a misleading explanation.
		if last, e := itemType(value); e == nil && last != typ {
			return chain.Rows{}, at{i: -1}.field("type", fmt.Errorf("%q after %q: the item has two types", clip([]byte(last)), typ))
		}
	}
	return rows, err
}

// itemType reads the type the way the decoder sees it (the last "type" key wins), which also checks that an
// item is JSON at all. It is the reference for fastItemType, which reads the same in a pass of the fast
// path's scanner: BenchmarkDecodeETLSortedKeys 5.0–5.2 µs an item with itemType, 3.0 with it, against 1.7
// for items whose "type" comes first (sniffType).
func itemType(value []byte) (string, *decodeError) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(value, &head); err != nil {
		return "", at{i: -1}.jsonError(err)
	}
	if head.Type == nil {
		return "", at{i: -1}.field("type", errMissing)
	}
	return *head.Type, nil
}

// sniffType reads the type of an item that starts with it, as every item ethereum-etl writes does, so that
// the item is parsed once. It only knows the stored types: skipped items and anything unusual are left to
// encoding/json (itemType).
func sniffType(v []byte) (string, bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return "", false
	}
	i = skipSpace(v, i+1)
	if !bytes.HasPrefix(v[i:], []byte(`"type"`)) {
		return "", false
	}
	i = skipSpace(v, i+len(`"type"`))
	if i >= len(v) || v[i] != ':' {
		return "", false
	}
	i = skipSpace(v, i+1)
	if i >= len(v) || v[i] != '"' {
		return "", false
	}
	i++
	end := bytes.IndexByte(v[i:], '"')
	if end < 0 {
		return "", false
	}
	switch string(v[i : i+end]) { // constants, so that nothing is allocated
	case etlTypeBlock:
		return etlTypeBlock, true
	case etlTypeTransaction:
		return etlTypeTransaction, true
	case etlTypeLog:
		return etlTypeLog, true
	case etlTypeToken:
		return etlTypeToken, true
	case etlTypeTrace:
		return etlTypeTrace, true
	case etlTypeContract:
		return etlTypeContract, true
	}
	return "", false
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// checkType catches an item whose "type" key appears twice (encoding/json keeps the last): sniffType read
// the first, and the two must agree.
func (c *conv) checkType(got, want string) {
	if got != want {
		c.fail("type", fmt.Errorf("%q after %q: the item has two types", clip([]byte(got)), want))
	}
}

func decodeETLBlock(value []byte) (chain.Rows, *decodeError) {
	var rows chain.Rows
	var it etlBlock[etlWithdrawal]
	if err := unmarshalWire(value, &it); err != nil {
		return rows, locateETLBlockError(value, err)
	}
	c := conv{at: at{list: etlTypeBlock, i: -1}}
	c.checkType(it.Type, etlTypeBlock)
	number := c.etlInt64("number", &it.Number)
	ints := make([]int64, 3)
	b := chain.Block{
		Number:           number,
		Hash:             c.hash("hash", &it.Hash),
		ParentHash:       c.hash("parent_hash", &it.ParentHash),
		Timestamp:        c.etlTime("timestamp", &it.Timestamp),
		Miner:            c.address("miner", &it.Miner),
		GasUsed:          c.etlInt64("gas_used", &it.GasUsed),
		GasLimit:         c.etlInt64("gas_limit", &it.GasLimit),
		BaseFeePerGas:    etlOptBig(&it.BaseFeePerGas),
		TransactionCount: c.etlInt32("transaction_count", &it.TransactionCount),
		Size:             c.etlOptInt64("size", &it.Size, &ints[0]),
		Nonce:            optBytes(&it.Nonce),
		Difficulty:       etlOptBig(&it.Difficulty),
		TotalDifficulty:  etlOptBig(&it.TotalDifficulty),
		ExtraData:        optBytes(&it.ExtraData),
		Sha3Uncles:       optHash(&it.Sha3Uncles),
		LogsBloom:        optBytes(&it.LogsBloom),
		TransactionsRoot: optHash(&it.TransactionsRoot),
		StateRoot:        optHash(&it.StateRoot),
		ReceiptsRoot:     optHash(&it.ReceiptsRoot),
		WithdrawalsRoot:  optHash(&it.WithdrawalsRoot),
		BlobGasUsed:      c.etlOptInt64("blob_gas_used", &it.BlobGasUsed, &ints[1]),
		ExcessBlobGas:    c.etlOptInt64("excess_blob_gas", &it.ExcessBlobGas, &ints[2]),
	}
	if c.err != nil {
		return rows, c.err
	}
	// ethereum-etl writes "withdrawals": [] for every block, so the list says nothing about whether the
	// block could have withdrawals; the root does (Shanghai and later). This keeps withdrawal_count NULL
	// before Shanghai, as for a bundle, whose pre-Shanghai blocks have no withdrawals field.
	if it.WithdrawalsRoot.ok || len(it.Withdrawals) > 0 {
		if len(it.Withdrawals) > math.MaxInt32 {
			return rows, c.at.field("withdrawals", errNotInt32)
		}
		n := int32(len(it.Withdrawals))
		b.WithdrawalCount = &n
		rows.Withdrawals = make([]chain.Withdrawal, len(it.Withdrawals))
		for i := range it.Withdrawals {
			w := &it.Withdrawals[i]
			c := conv{at: at{list: "block.withdrawals", i: i}}
			rows.Withdrawals[i] = chain.Withdrawal{
				BlockNumber:    number,
				Index:          c.etlInt64("index", &w.Index),
				Position:       int32(i),
				ValidatorIndex: c.etlInt64("validator_index", &w.ValidatorIndex),
				Address:        c.address("address", &w.Address),
				AmountGwei:     c.etlBig("amount", &w.Amount),
			}
			if c.err != nil {
				return chain.Rows{}, c.err
			}
		}
	}
	rows.Blocks = []chain.Block{b}
	return rows, nil
}

func locateETLBlockError(value []byte, err error) *decodeError {
	var it etlBlock[json.RawMessage]
	if e := decodeAt(at{list: etlTypeBlock, i: -1}, value, &it); e != nil {
		return e
	}
	for i, raw := range it.Withdrawals {
		if e := decodeAt(at{list: "block.withdrawals", i: i}, raw, &etlWithdrawal{}); e != nil {
			return e
		}
	}
	return at{list: etlTypeBlock, i: -1}.jsonError(err)
}

// etlTxItem is everything a transaction item's row points into, in one allocation: the row keeps its
// hashes, addresses and numbers where the wire struct has them (see etlInt.bigIn), so the two live as long as
// each other anyway. With etlLogItem, an item takes two allocations where it took about six
// (TestItemsDecodeInTwoAllocations).
type etlTxItem struct {
	wire   etlTx
	ints   [3]int64
	words  [7]big.Word // the numeric columns' values (etlInt.bigIn)
	status int16
	rows   [1]chain.Transaction
}

// word is the k-th of the item's words, capped: a big.Int that grows must not write into the next.
func (a *etlTxItem) word(k int) []big.Word { return a.words[k : k+1 : k+1] }

func decodeETLTransaction(value []byte) (chain.Rows, *decodeError) {
	a := new(etlTxItem)
	it := &a.wire
	if !fastDecode(value, func(f *fastReader) { etlTxStruct.read(f, it) }) {
		*it = etlTx{}
		if err := unmarshalWire(value, it); err != nil {
			return chain.Rows{}, decodeAt(at{list: etlTypeTransaction, i: -1}, value, &etlTx{})
		}
	}
	c := conv{at: at{list: etlTypeTransaction, i: -1}}
	c.checkType(it.Type, etlTypeTransaction)
	a.rows[0] = chain.Transaction{
		BlockNumber:          c.etlInt64("block_number", &it.BlockNumber),
		TransactionIndex:     c.etlInt32("transaction_index", &it.TransactionIndex),
		Hash:                 c.hash("hash", &it.Hash),
		BlockHash:            c.hash("block_hash", &it.BlockHash),
		BlockTimestamp:       c.etlTime("block_timestamp", &it.BlockTimestamp),
		FromAddress:          c.address("from_address", &it.FromAddress),
		ToAddress:            optAddress(&it.ToAddress),
		Value:                c.etlBigIn("value", &it.Value, a.word(0)),
		Gas:                  c.etlInt64("gas", &it.Gas),
		GasPrice:             etlOptBigIn(&it.GasPrice, a.word(1)),
		MaxFeePerGas:         etlOptBigIn(&it.MaxFeePerGas, a.word(2)),
		MaxPriorityFeePerGas: etlOptBigIn(&it.MaxPriorityFeePerGas, a.word(3)),
		MaxFeePerBlobGas:     etlOptBigIn(&it.MaxFeePerBlobGas, a.word(4)),
		Type:                 c.etlType("transaction_type", &it.TransactionType),
		Nonce:                c.etlInt64("nonce", &it.Nonce),
		Input:                c.bytes("input", &it.Input),
		Status:               c.etlStatusIn("receipt_status", &it.ReceiptStatus, &a.status),
		Root:                 stateRoot(&it.ReceiptRoot),
		GasUsed:              c.etlOptInt64("receipt_gas_used", &it.ReceiptGasUsed, &a.ints[0]),
		CumulativeGasUsed:    c.etlOptInt64("receipt_cumulative_gas_used", &it.ReceiptCumulativeGasUsed, &a.ints[1]),
		EffectiveGasPrice:    etlOptBigIn(&it.ReceiptEffectiveGasPrice, a.word(5)),
		ContractAddress:      contractAddress(&it.ReceiptContractAddress),
		BlobGasUsed:          c.etlOptInt64("receipt_blob_gas_used", &it.ReceiptBlobGasUsed, &a.ints[2]),
		BlobGasPrice:         etlOptBigIn(&it.ReceiptBlobGasPrice, a.word(6)),
	}
	if c.err != nil {
		return chain.Rows{}, c.err
	}
	return chain.Rows{Transactions: a.rows[:]}, nil
}

// etlLogItem is etlTxItem for a log item: its wire struct, the topics it reads into and the row.
type etlLogItem struct {
	wire   etlLog
	topics [1]topics
	list   [maxTopics][]byte
	rows   [1]chain.Log
}

func decodeETLLog(value []byte) (chain.Rows, *decodeError) {
	a := new(etlLogItem)
	it := &a.wire
	if !fastDecode(value, func(f *fastReader) {
		f.topics = a.topics[:] // topicList's slab
		etlLogStruct.read(f, it)
	}) {
		*it = etlLog{}
		if err := unmarshalWire(value, it); err != nil {
			return chain.Rows{}, decodeAt(at{list: etlTypeLog, i: -1}, value, &etlLog{})
		}
	}
	c := conv{at: at{list: etlTypeLog, i: -1}}
	c.checkType(it.Type, etlTypeLog)
	slab := a.list[:]
	a.rows[0] = chain.Log{
		BlockNumber:      c.etlInt64("block_number", &it.BlockNumber),
		LogIndex:         c.etlInt32("log_index", &it.LogIndex),
		TransactionHash:  c.hash("transaction_hash", &it.TransactionHash),
		TransactionIndex: c.etlInt32("transaction_index", &it.TransactionIndex),
		BlockTimestamp:   c.etlTime("block_timestamp", &it.BlockTimestamp),
		Address:          c.address("address", &it.Address),
		Topics:           c.topicsOn("topics", it.Topics, &slab),
		Data:             c.bytes("data", &it.Data),
		BlockHash:        optHash(&it.BlockHash),
	}
	if c.err != nil {
		return chain.Rows{}, c.err
	}
	return chain.Rows{Logs: a.rows[:]}, nil
}

func decodeETLToken(value []byte) (chain.Rows, *decodeError) {
	var it etlToken
	if err := unmarshalWire(value, &it); err != nil {
		return chain.Rows{}, decodeAt(at{list: etlTypeToken, i: -1}, value, &etlToken{})
	}
	c := conv{at: at{list: etlTypeToken, i: -1}}
	c.checkType(it.Type, etlTypeToken)
	t := chain.Token{
		Address:     c.address("address", &it.Address),
		Name:        TokenText(it.Name),
		Symbol:      TokenText(it.Symbol),
		TotalSupply: etlOptBig(&it.TotalSupply),
		Source:      chain.TokenFromChain,
	}
	if it.Decimals.set && !it.Decimals.isBig && it.Decimals.u <= 255 {
		d := int32(it.Decimals.u)
		t.Decimals = &d
	}
	if it.BlockNumber.set {
		n := c.etlInt64("block_number", &it.BlockNumber)
		t.BlockNumber = &n
	}
	if it.Standard != nil {
		switch *it.Standard {
		case "erc20", "erc721", "erc1155", "":
			t.Standard = *it.Standard
		default:
			c.fail("standard", fmt.Errorf("%q is not erc20, erc721, erc1155 or empty", clip([]byte(*it.Standard))))
		}
	} else {
		// ethereum-etl's own item (chainsink's always has "standard"): it writes "" where name() or symbol()
		// failed and 0 where decimals() did, which would read as facts. An empty text is taken as unknown,
		// and so are zero decimals of a token that told neither its name nor its symbol.
		if t.Name != nil && *t.Name == "" {
			t.Name = nil
		}
		if t.Symbol != nil && *t.Symbol == "" {
			t.Symbol = nil
		}
		if t.Name == nil && t.Symbol == nil && t.Decimals != nil && *t.Decimals == 0 {
			t.Decimals = nil
		}
	}
	if c.err != nil {
		return chain.Rows{}, c.err
	}
	return chain.Rows{Tokens: []chain.Token{t}}, nil
}

// TokenText is a token's name or symbol as stored: without the NULs that contracts pad fixed-size text with
// (and that Postgres text refuses), invalid UTF-8 replaced by U+FFFD, surrounding space trimmed. Nil stays nil.
func TokenText(s *string) *string {
	if s == nil {
		return nil
	}
	v := strings.ReplaceAll(*s, "\x00", "")
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	v = strings.TrimSpace(v)
	return &v
}

// EncodeETLToken is t as an ethereum-etl token item, the message `chainsink tokens` publishes.
func EncodeETLToken(t chain.Token) ([]byte, error) {
	it := struct {
		Type        string       `json:"type"`
		Address     string       `json:"address"`
		Symbol      *string      `json:"symbol"`
		Name        *string      `json:"name"`
		Decimals    *int32       `json:"decimals"`
		TotalSupply *json.Number `json:"total_supply"`
		BlockNumber *uint64      `json:"block_number"`
		Standard    string       `json:"standard"` // always there: what tells chainsink's item from ethereum-etl's
		ItemID      string       `json:"item_id"`
	}{Type: etlTypeToken, Address: "0x" + hex.EncodeToString(t.Address), Symbol: t.Symbol, Name: t.Name,
		Decimals: t.Decimals, BlockNumber: t.BlockNumber, Standard: t.Standard}
	if len(t.Address) != 20 {
		return nil, fmt.Errorf("token address %x is not 20 bytes", t.Address)
	}
	if t.TotalSupply != nil {
		n := json.Number(t.TotalSupply.String())
		it.TotalSupply = &n
	}
	it.ItemID = "token_" + it.Address
	if t.BlockNumber != nil {
		it.ItemID = fmt.Sprintf("token_%d_%s", *t.BlockNumber, it.Address)
	}
	return json.Marshal(it)
}
