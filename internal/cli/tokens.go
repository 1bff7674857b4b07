package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/spf13/cobra"

	"github.com/chainsink/chainsink/internal/backfill"
	"github.com/chainsink/chainsink/internal/tokens"
	"github.com/chainsink/chainsink/store"
)

// tokensOptions are `chainsink tokens`' flags.
type tokensOptions struct {
	db       store.Config
	kafka    kafkaFlags
	list     string
	chainID  uint64
	rpc      string
	topic    string
	page     int
	batch    int
	attempts int
}

func newTokensCmd(g *globals) *cobra.Command {
	o := &tokensOptions{}
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Fill the tokens table: read the metadata of the tokens seen in token_transfers, or load a token list",
		Long: `Give token_transfers' addresses a name, a symbol and decimals (the view token_transfers_scaled scales
amounts by them).

--rpc URL reads name(), symbol(), decimals() and totalSupply() of every token in token_transfers that no chain
read describes yet, with batched eth_call at the node's head, and publishes each as an ethereum-etl token
item to --topic; "chainsink run --topics TOPIC:ethereum-etl" stores them exactly once like any other item.
A call that reverts or returns garbage leaves its column NULL; bytes32 names and symbols (MKR, SAI) are read
as text. Run it again after new tokens appear: it only reads what is missing.

--list FILE loads a token list in the tokenlists.org format (for example @uniswap/default-token-list's
build/uniswap-default.tokenlist.json) straight into tokens, the entries of --chain-id only, so that the
well-known tokens have symbols before any node is asked. What the chain says replaces a list's row; a list
never replaces what the chain said.`,
		Example: `  chainsink tokens --list uniswap-default.tokenlist.json --database-url postgres://chainsink@localhost/chain
  chainsink tokens --rpc http://localhost:8545 --brokers localhost:9092 --topic eth_tokens \
    --database-url postgres://chainsink@localhost/chain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			if err := o.complete(); err != nil {
				return err
			}
			return runTokens(cmd.Context(), o, g, logger)
		},
	}
	addDatabaseFlags(cmd, &o.db)
	addKafkaFlags(cmd, &o.kafka, "Kafka bootstrap servers, host:port[,host:port…] (with --rpc)")
	f := cmd.Flags()
	f.StringVar(&o.list, "list", "", "token list file (tokenlists.org JSON) to load into tokens")
	f.Uint64Var(&o.chainID, "chain-id", 1, "chain whose entries --list loads")
	f.StringVar(&o.rpc, "rpc", "", "Ethereum JSON-RPC URL to read the missing tokens from (http, https, ws, wss or an IPC path)")
	f.StringVar(&o.topic, "topic", "", "topic to publish token items to (with --rpc)")
	f.IntVar(&o.page, "page", 200, "tokens listed, read and published at a time")
	f.IntVar(&o.batch, "batch-size", 50, "tokens per JSON-RPC batch request (four eth_calls each)")
	f.IntVar(&o.attempts, "max-attempts", 8, "tries of one read before the command fails")
	return cmd
}

func (o *tokensOptions) complete() error {
	var errs []error
	if o.list == "" && o.rpc == "" {
		errs = append(errs, errors.New("give --rpc URL (read the missing tokens from a node) or --list FILE (load a token list), or both"))
	}
	if o.rpc != "" {
		if o.kafka.brokers == "" {
			errs = append(errs, errors.New("--brokers is empty: --rpc publishes token items to Kafka"))
		}
		if o.topic == "" {
			errs = append(errs, errors.New("--topic is empty: --rpc publishes token items to it"))
		}
	}
	if o.page <= 0 || o.batch <= 0 || o.attempts <= 0 {
		errs = append(errs, fmt.Errorf("--page %d, --batch-size %d and --max-attempts %d must be positive", o.page, o.batch, o.attempts))
	}
	o.db.MaxConns = 2
	errs = append(errs, o.db.Validate())
	return errors.Join(errs...)
}

func runTokens(ctx context.Context, o *tokensOptions, g *globals, logger *slog.Logger) error {
	if err := store.CheckMigrated(ctx, o.db); err != nil {
		return err
	}
	s, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer s.Close()
	if o.list != "" {
		data, err := os.ReadFile(o.list)
		if err != nil {
			return fmt.Errorf("read token list: %w", err)
		}
		name, list, err := tokens.ParseList(data, o.chainID)
		if err != nil {
			return fmt.Errorf("%s: %w", o.list, err)
		}
		n, err := store.SaveTokens(ctx, s.Pool(), list)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(g.stdout, "token list %q: %d tokens of chain %d, %d rows inserted or updated\n",
			name, len(list), o.chainID, n); err != nil {
			return err
		}
	}
	if o.rpc == "" {
		return nil
	}
	// The unread tokens are found through token_transfers' index on token_address; without it (deferred by
	// `migrate indexes drop` during a backfill) every step of the walk scans the table.
	indexes, err := store.SecondaryIndexStatus(ctx, s.Pool())
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		if ix.Name == "token_transfers_token_block_idx" && !ix.Present {
			return fmt.Errorf("index %s is not there (deferred by chainsink migrate indexes drop?): create it first "+
				"with chainsink migrate indexes create, or tokens --rpc scans token_transfers once per token", ix.Name)
		}
	}
	cm, err := o.kafka.configMap(backfill.ProducerConfig(), backfill.FixedProducerConfig())
	if err != nil {
		return err
	}
	client, err := rpc.DialOptions(ctx, o.rpc)
	if err != nil {
		return fmt.Errorf("connect to JSON-RPC: %w", err)
	}
	defer client.Close()
	pub, err := backfill.NewKafkaPublisher(o.topic, cm, logger)
	if err != nil {
		return err
	}
	defer pub.Close()
	res, err := tokens.Fill(ctx, s.Pool(), tokens.NewReader(client, o.batch), pub, tokens.FillConfig{
		Page:     o.page,
		Attempts: o.attempts,
		Progress: func(n int) { logger.Info("token items published", "tokens", n) },
	}, logger)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "read %d tokens at block %d and published them to %s (stored by chainsink run --topics %s:ethereum-etl)\n",
		res.Published, res.Block, o.topic, o.topic)
	return err
}
