-- +goose Up
-- The hash of the block a trace is of, as logs have it since 00004: ethereum-etl's trace items travel apart
-- from their transactions, so a reorg's orphaned traces are found by their own block hash, not through their
-- transaction. NULL for traces stored before this migration (a reorg then leaves them to their
-- transaction's replacement, as before). Adding a column without a default does not rewrite the table.
ALTER TABLE traces ADD COLUMN block_hash bytea;
COMMENT ON COLUMN traces.block_hash IS 'hash of the block the trace is of; NULL for traces stored before migration 9';

-- +goose Down
ALTER TABLE traces DROP COLUMN block_hash;
