-- +goose Up
-- Each `chainsink retention` run: the horizon it kept history from (the first block kept: every row of a
-- lower height was deleted from every data table), the head it measured from, what it deleted. The newest
-- finished run's horizon is where stored history starts, which `status` shows and `verify` starts from.
CREATE TABLE retention_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    horizon     bigint      NOT NULL,
    keep_blocks bigint      NOT NULL,
    head        bigint      NOT NULL,
    deleted     bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

COMMENT ON TABLE retention_runs IS 'chainsink retention: each run''s horizon (first block kept) and what it deleted';

-- +goose Down
DROP TABLE retention_runs;
