-- +goose Up
-- The hash of the block a log is in, so that a reorg's orphaned logs can be told from the new block's: when an
-- ethereum-etl block item arrives, the logs (and transactions) of its height with another block hash are
-- removed in the same transaction, with their decoded rows. Nullable and without a default, so adding it to a
-- large table is a catalog change only; logs stored before this migration keep NULL (and are never removed
-- as orphans: re-publish their range to fill it).
ALTER TABLE logs ADD COLUMN block_hash bytea;

-- +goose Down
ALTER TABLE logs DROP COLUMN block_hash;
