package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/abi"
	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/config"
	"github.com/chainsink/chainsink/internal/typed"
	"github.com/chainsink/chainsink/store"
	"github.com/chainsink/chainsink/store/chain"
)

// abiOptions are the flags that choose the ABIs and the typed tables, shared by run, redecode and tables.
type abiOptions struct {
	config    string
	abiDir    string
	contracts string
}

func addABIFlags(cmd *cobra.Command, o *abiOptions) {
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "configuration file (YAML or JSON) of contract sets whose events and calls get typed tables; see docs/typed-tables.md")
	f.StringVar(&o.abiDir, "abi-dir", "", "directory of extra ABI JSON files (NAME.json), added to the built-in ones (the config file's abi_dir)")
	f.StringVar(&o.contracts, "contracts", "", `JSON file binding addresses to ABI names, {"0xaddr": "NAME"}, for anonymous or ambiguous events`)
}

// load reads the configuration file, if any, and the ABIs. tables is nil without --config.
func (o *abiOptions) load() (*abi.Registry, *typed.Tables, error) {
	return o.loadSets(nil)
}

// loadSets is load with only the sets named in sets, all when sets is empty.
func (o *abiOptions) loadSets(sets []string) (*abi.Registry, *typed.Tables, error) {
	var file *config.File
	dir := o.abiDir
	if o.config != "" {
		var err error
		if file, err = config.Load(o.config); err != nil {
			return nil, nil, err
		}
		if file.ABIDir != "" {
			if dir != "" && dir != file.ABIDir {
				return nil, nil, fmt.Errorf("--abi-dir %s and abi_dir %s of %s: give one of them", dir, file.ABIDir, o.config)
			}
			dir = file.ABIDir
		}
	}
	reg, err := loadRegistry(dir, o.contracts)
	if err != nil {
		return nil, nil, err
	}
	if file == nil {
		return reg, nil, nil
	}
	if len(sets) > 0 {
		var keep []*config.Set
		for _, name := range sets {
			i := slices.IndexFunc(file.Sets, func(s *config.Set) bool { return s.Name == name })
			if i < 0 {
				return nil, nil, fmt.Errorf("--sets %s: %s has no contract set %q", strings.Join(sets, ","), o.config, name)
			}
			keep = append(keep, file.Sets[i])
		}
		file.Sets = keep
	}
	ts, err := typed.Compile(file, reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, ts, nil
}

// typedSchema is what a writer of ts's tables needs: the tables, with the children registry when a set has
// a factory, and the gate of the factory sets.
func typedSchema(ts *typed.Tables) (chain.Schema, *chain.Discovery) {
	if ts == nil {
		return nil, nil
	}
	return ts.WriteSchema(), ts.Discovery()
}

// untypedOf is the configuration's events_table and calls_table for the store (none without a
// configuration).
func untypedOf(ts *typed.Tables) store.Untyped {
	if ts == nil {
		return store.Untyped{}
	}
	return store.Untyped{Events: ts.UntypedEvents, Calls: ts.UntypedCalls}
}

// checkTables refuses to go on while ts declares tables that are not applied.
func checkTables(ctx context.Context, db store.DB, ts *typed.Tables) error {
	if ts == nil {
		return nil
	}
	err := store.CheckTables(ctx, db, ts.Records())
	if errors.Is(err, store.ErrTablesNotApplied) {
		return fmt.Errorf("%w (with the same --config)", err)
	}
	return err
}

// filtered returns the filtered fetcher of node when --config is given (filtered mode), of the named sets
// alone when sets is not empty; nil without --config.
func (o *abiOptions) filtered(node *backfill.RPCFetcher, traces bool, sets []string) (*backfill.FilteredFetcher, error) {
	if o.config == "" {
		if len(sets) > 0 {
			return nil, errors.New("--sets needs --config: it names contract sets of the configuration")
		}
		return nil, nil
	}
	if traces {
		return nil, errors.New("--traces with --config: filtered mode reads no traces (a set's call tables get the transactions' own calls)")
	}
	_, ts, err := o.loadSets(sets)
	if err != nil {
		return nil, err
	}
	return backfill.NewFilteredFetcher(node, ts.Filter()), nil
}
