package abi

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite ../testdata/abi-expected golden files")

const goldenDir = "../testdata/abi-expected"

// TestGoldenBlock17173049 pins the exact bytes of every Event.Args and
// Call.Args for the 271 logs and 116 transactions of block 17173049. The
// values themselves are checked independently elsewhere (ethereum-etl,
// TrueBlocks, Uniswap amounts); this catches any change in key names, key
// order or number formatting, which would silently change stored jsonb.
// Regenerate with: go test ./abi -run Golden -update
func TestGoldenBlock17173049(t *testing.T) {
	r := defaultRegistry(t)
	var events bytes.Buffer
	for _, l := range loadETLLogs(t, blockDir+"/expected_logs.json") {
		ev, ok, err := r.DecodeLog(l.Log)
		if err != nil {
			t.Fatalf("log %d: %v", l.LogIndex, err)
		}
		line := `{"log_index":` + strconv.FormatInt(l.LogIndex, 10)
		if ok {
			line += `,"abi":` + quote(ev.ABIName) + `,"name":` + quote(ev.Name) + `,"signature":` + quote(ev.Signature) + `,"args":` + string(ev.Args)
		}
		events.WriteString(line + "}\n")
	}
	var calls bytes.Buffer
	for _, tx := range loadETLTransactions(t, blockDir+"/expected_transactions.json") {
		c, ok, err := r.DecodeCall(tx.To, tx.Input)
		if err != nil {
			t.Fatalf("tx %s: %v", tx.Hash, err)
		}
		line := `{"hash":` + quote(tx.Hash)
		if ok {
			line += `,"abi":` + quote(c.ABIName) + `,"name":` + quote(c.Name) + `,"signature":` + quote(c.Signature) + `,"args":` + string(c.Args)
		}
		calls.WriteString(line + "}\n")
	}
	for name, got := range map[string][]byte{
		"block_17173049_events.jsonl": events.Bytes(),
		"block_17173049_calls.jsonl":  calls.Bytes(),
	} {
		path := goldenDir + "/" + name
		for i, line := range bytes.Split(bytes.TrimSpace(got), []byte("\n")) {
			if !json.Valid(line) {
				t.Fatalf("%s line %d is not valid JSON: %s", name, i+1, line)
			}
		}
		if *update {
			if err := os.MkdirAll(goldenDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
			for i := 0; i < max(len(gl), len(wl)); i++ {
				var g, w []byte
				if i < len(gl) {
					g = gl[i]
				}
				if i < len(wl) {
					w = wl[i]
				}
				if !bytes.Equal(g, w) {
					t.Errorf("%s line %d:\n got  %s\n want %s", name, i+1, g, w)
					break
				}
			}
		}
	}
}

func quote(s string) string { return string(appendJSONString(nil, s)) }
