-- +goose Up
-- Every change of a stored offset that did not come from a committed batch: `chainsink offsets set`, the only
-- way an operator resolves an offset anomaly (a recreated topic, retention past unconsumed data). The row is
-- written in the transaction that changes kafka_offsets, so the history is complete.
CREATE TABLE offset_changes (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    from_offset    bigint,
    to_offset      bigint      NOT NULL CHECK (to_offset >= 0),
    changed_by     text        NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offset_changes_partition_idx ON offset_changes (consumer_group, topic, partition, changed_at);
COMMENT ON TABLE offset_changes IS 'changes of kafka_offsets made by an operator (chainsink offsets set), with who, when, from and to';
COMMENT ON COLUMN offset_changes.from_offset IS 'the stored next offset before the change; NULL when the partition had none';

-- +goose Down
DROP TABLE offset_changes;
