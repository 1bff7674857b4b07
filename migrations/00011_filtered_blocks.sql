-- +goose Up
-- A block stored by filtered mode (`chainsink backfill --config F`, docs/formats.md "Filtered bundles")
-- holds only what the configuration asks for: the logs of its contract sets and, for sets with calls, the
-- transactions to them. verify then checks such a height for what it holds (its chain links, its rows'
-- parents) and not for all of the block's transactions. Adding a column with a constant default rewrites
-- nothing.
ALTER TABLE blocks ADD COLUMN filtered boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN blocks.filtered IS 'true when only the configuration''s logs and calls of this block are stored (filtered mode), not all its transactions and logs';

-- +goose Down
ALTER TABLE blocks DROP COLUMN filtered;
