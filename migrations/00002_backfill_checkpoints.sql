-- +goose Up
-- Progress of `chainsink backfill` jobs, so that an interrupted backfill continues where it stopped.
-- next_block is the contiguous low watermark: every block in [from_block, next_block) has been delivered to
-- the topic (acknowledged by Kafka). Blocks at or above it may have been delivered too; a re-run publishes
-- them again, which is harmless because a bundle replaces its whole block.
CREATE TABLE backfill_checkpoints (
    job         text        PRIMARY KEY,
    topic       text        NOT NULL,
    from_block  bigint      NOT NULL CHECK (from_block >= 0),
    to_block    bigint      NOT NULL CHECK (to_block >= from_block),
    next_block  bigint      NOT NULL CHECK (next_block >= from_block),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE backfill_checkpoints IS 'chainsink backfill progress, one row per job (--job, default <topic>:<from>-<to>)';
COMMENT ON COLUMN backfill_checkpoints.next_block IS 'every block in [from_block, next_block) has been delivered to the topic';

-- +goose Down
DROP TABLE backfill_checkpoints;
