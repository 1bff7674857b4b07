package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chainsink/chainsink/store"
)

// runCLI runs the chainsink command line in-process, as Main does, and returns what it printed.
func runCLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// dbArgs are the database flags of cfg.
func dbArgs(cfg store.Config) []string {
	return []string{"--database-url", cfg.DatabaseURL, "--schema", cfg.Schema}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func writeBatch(t *testing.T, ctx context.Context, db store.DB, b *store.Batch) {
	t.Helper()
	if _, err := store.WriteBatch(ctx, db, b); err != nil {
		t.Fatalf("write batch of %s/%d: %v", b.Topic, b.Partition, err)
	}
}

// decodeJSON parses a command's --json output into v, failing the test with the output when it does not parse.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("parse JSON output: %v\n%s", err, out)
	}
}

// keysOf lists the keys of a JSON object, for checking that a document keeps its documented shape.
func keysOf(t *testing.T, raw json.RawMessage) map[string]bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func requireKeys(t *testing.T, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	got := keysOf(t, raw)
	wantSet := map[string]bool{}
	for _, k := range want {
		wantSet[k] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(wantSet) {
		t.Fatalf("%s has keys %v, want exactly %v", what, got, wantSet)
	}
}
