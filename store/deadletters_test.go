package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// writeDeadLetters stores one failed message per reason at offsets from, from+1, … of group/topic/partition 0.
func writeDeadLetters(t *testing.T, db store.DB, group, topic string, from int64, reasons ...string) {
	t.Helper()
	b := store.NewBatch(group, topic, 0, from, chain.ReplaceRows)
	for i, r := range reasons {
		off := from + int64(i)
		b.Add(store.Message{Offset: off, Key: []byte(fmt.Sprintf("k%d", off)), Value: []byte(fmt.Sprintf("value %s %d", topic, off)),
			Failure: &chain.Failure{Reason: r, Err: errors.New("bad " + r)}})
	}
	if _, err := store.WriteBatch(context.Background(), db, b); err != nil {
		t.Fatal(err)
	}
}

func idsOfRows(rows []store.DeadLetterRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func TestDeadLetterQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()
	writeDeadLetters(t, db, "g", "logs", 0, "bad_field", "invalid_json", "bad_field")
	writeDeadLetters(t, db, "g", "blocks", 0, "bad_field")
	writeDeadLetters(t, db, "other", "logs", 0, "bad_field")
	// A NULL value (a tombstone) is listed with size -1.
	tomb := store.NewBatch("g", "logs", 0, 3, chain.ReplaceRows)
	tomb.Add(store.Message{Offset: 3, Failure: &chain.Failure{Reason: "empty", Err: errors.New("no value")}})
	if _, err := store.WriteBatch(ctx, db, tomb); err != nil {
		t.Fatal(err)
	}

	all, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || !slices.IsSorted(idsOfRows(all)) {
		t.Fatalf("all = %v, want 6 rows by id", idsOfRows(all))
	}
	first := all[0]
	if first.Group != "g" || first.Topic != "logs" || first.Partition != 0 || first.Offset != 0 ||
		first.Reason != "bad_field" || first.Error != "bad bad_field" || first.KeySize != 2 ||
		first.ValueSize != len("value logs 0") || time.Since(first.CreatedAt) > time.Hour {
		t.Fatalf("first = %+v", first)
	}
	if last := all[5]; last.Reason != "empty" || last.KeySize != -1 || last.ValueSize != -1 {
		t.Fatalf("tombstone = %+v", last)
	}

	for _, c := range []struct {
		f    store.DeadLetterFilter
		want []int64
	}{
		{store.DeadLetterFilter{Reason: "bad_field"}, []int64{all[0].ID, all[2].ID, all[3].ID, all[4].ID}},
		{store.DeadLetterFilter{Reason: "bad_field", Topic: "logs"}, []int64{all[0].ID, all[2].ID, all[4].ID}},
		{store.DeadLetterFilter{Reason: "bad_field", Topic: "logs", Group: "g"}, []int64{all[0].ID, all[2].ID}},
		{store.DeadLetterFilter{IDs: []int64{all[1].ID, all[3].ID, 999999}}, []int64{all[1].ID, all[3].ID}},
		{store.DeadLetterFilter{Reason: "bad_field", Limit: 2}, []int64{all[0].ID, all[2].ID}},
		{store.DeadLetterFilter{AfterID: all[0].ID, UpToID: all[2].ID}, []int64{all[1].ID, all[2].ID}},
		{store.DeadLetterFilter{Topic: "nope"}, []int64{}},
	} {
		got, err := store.ListDeadLetters(ctx, db, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idsOfRows(got), c.want) {
			t.Errorf("%+v: ids %v, want %v", c.f, idsOfRows(got), c.want)
		}
		n, err := store.CountDeadLetters(ctx, db, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if wantN := len(c.want); c.f.Limit == 0 && n != int64(wantN) {
			t.Errorf("%+v: count %d, want %d", c.f, n, wantN)
		}
		if c.f.Limit == 2 && n != 4 {
			t.Errorf("count ignores the limit: %d, want 4", n)
		}
	}

	maxID, err := store.MaxDeadLetterID(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if maxID != all[5].ID {
		t.Fatalf("max id %d, want %d", maxID, all[5].ID)
	}
	pl, err := store.DeadLetterPayloads(ctx, db, []int64{all[1].ID, all[5].ID})
	if err != nil {
		t.Fatal(err)
	}
	if string(pl[all[1].ID].Key) != "k1" || string(pl[all[1].ID].Value) != "value logs 1" ||
		pl[all[5].ID].Key != nil || pl[all[5].ID].Value != nil || len(pl) != 2 {
		t.Fatalf("payloads = %+v", pl)
	}
	n, err := store.DeleteDeadLetters(ctx, db, []int64{all[1].ID, all[2].ID, 999999})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("deleted %d, want 2", n)
	}
	rest, err := store.ListDeadLetters(ctx, db, store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{all[0].ID, all[3].ID, all[4].ID, all[5].ID}; !slices.Equal(idsOfRows(rest), want) {
		t.Fatalf("after delete: %v, want %v", idsOfRows(rest), want)
	}
}

func TestStatusReport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()
	empty, err := store.Status(ctx, db, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if empty.NewestBlock != nil || len(empty.Offsets) != 0 || len(empty.DeadLetters) != 0 || len(empty.Tables) != len(chain.CoreTables.Names()) {
		t.Fatalf("empty schema: %+v", empty)
	}

	writeBlocks(t, db, 100, 102, 101)                                 // g/blocks/0 → next offset 3
	writeDeadLetters(t, db, "g", "logs", 0, "bad_field", "bad_field") // g/logs/0 → 2
	writeDeadLetters(t, db, "h", "logs", 0, "invalid_json")           // h/logs/0 → 1

	rep, err := store.Status(ctx, db, "g", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Offsets) != 2 || rep.Offsets[0].Topic != "blocks" || rep.Offsets[0].NextOffset != 3 ||
		rep.Offsets[1].Topic != "logs" || rep.Offsets[1].NextOffset != 2 {
		t.Fatalf("offsets of g = %+v", rep.Offsets)
	}
	if len(rep.DeadLetters) != 1 || rep.DeadLetters[0] != (store.DeadLetterSummary{Topic: "logs", Reason: "bad_field",
		Count: 2, Newest: rep.DeadLetters[0].Newest}) || rep.DeadLetters[0].Newest.IsZero() {
		t.Fatalf("dead letters of g = %+v", rep.DeadLetters)
	}
	if rep.NewestBlock == nil || rep.NewestBlock.Number != 102 || !rep.NewestBlock.Timestamp.Equal(ts) {
		t.Fatalf("newest block = %+v", rep.NewestBlock)
	}
	exact := map[string]int64{}
	for _, tr := range rep.Tables {
		if !tr.Exact {
			t.Fatalf("%s: not exact", tr.Table)
		}
		exact[tr.Table] = tr.Rows
	}
	if exact["blocks"] != 3 || exact["logs"] != 6 || exact["events"] != 3 {
		t.Fatalf("exact counts = %v", exact)
	}

	all, err := store.Status(ctx, db, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Offsets) != 3 || len(all.DeadLetters) != 2 {
		t.Fatalf("all groups: %d offsets, %d dead letter groups", len(all.Offsets), len(all.DeadLetters))
	}
	// Once analyzed, small tables are estimated exactly. Analyzed as autovacuum does it: the plain tables and
	// the partitions, never a partitioned table itself (whose own reltuples then stays unknown).
	var leaves []string
	if err := db.QueryRow(ctx, `SELECT array_agg(coalesce(p.relid, t::regclass)::text) FROM unnest($1::text[]) t
		LEFT JOIN LATERAL (SELECT relid FROM pg_partition_tree(t::regclass) WHERE isleaf) p ON true`,
		chain.CoreTables.Names()).Scan(&leaves); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "ANALYZE "+strings.Join(leaves, ", ")); err != nil {
		t.Fatal(err)
	}
	est, err := store.EstimateRows(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for tbl, n := range exact {
		if est[tbl] != n {
			t.Errorf("%s: estimated %d rows after ANALYZE, counted %d", tbl, est[tbl], n)
		}
	}
}
