package store_test

import (
	"context"
	"testing"

	"github.com/chainsink/chainsink/internal/pgtest"
	"github.com/chainsink/chainsink/store"
)

func TestBackfillCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := pgtest.Open(t)
	db := s.Pool()

	if _, ok, err := store.LoadCheckpoint(ctx, db, "blocks:0-99"); err != nil || ok {
		t.Fatalf("load of a new job: ok=%v err=%v", ok, err)
	}
	cp := store.BackfillCheckpoint{Job: "blocks:0-99", Topic: "blocks", FromBlock: 0, ToBlock: 99, NextBlock: 0}
	for _, next := range []int64{0, 40, 70} {
		cp.NextBlock = next
		if err := store.SaveCheckpoint(ctx, db, cp); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := store.LoadCheckpoint(ctx, db, cp.Job)
	if err != nil || !ok {
		t.Fatalf("load: ok=%v err=%v", ok, err)
	}
	if got.Topic != "blocks" || got.FromBlock != 0 || got.ToBlock != 99 || got.NextBlock != 70 || got.UpdatedAt.IsZero() {
		t.Fatalf("loaded %+v", got)
	}

	// A stale save (lower watermark) does not move it back; a new range (a "latest" job re-run) is taken.
	cp.NextBlock, cp.ToBlock = 50, 150
	if err := store.SaveCheckpoint(ctx, db, cp); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.LoadCheckpoint(ctx, db, cp.Job); got.NextBlock != 70 || got.ToBlock != 150 {
		t.Fatalf("after a stale save: %+v, want next 70, to 150", got)
	}

	// Other jobs are independent.
	if err := store.SaveCheckpoint(ctx, db, store.BackfillCheckpoint{Job: "other", Topic: "t", FromBlock: 5, ToBlock: 5, NextBlock: 6}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.LoadCheckpoint(ctx, db, cp.Job); got.NextBlock != 70 {
		t.Fatalf("other job changed this one: %+v", got)
	}

	// The table's checks refuse a watermark below the range.
	bad := store.BackfillCheckpoint{Job: "bad", Topic: "t", FromBlock: 10, ToBlock: 20, NextBlock: 9}
	if err := store.SaveCheckpoint(ctx, db, bad); err == nil {
		t.Fatal("a next_block below from_block was accepted")
	}
}
