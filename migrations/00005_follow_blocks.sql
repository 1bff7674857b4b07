-- +goose Up
-- What `chainsink follow` has published: the hashes of the last blocks of each follower (job), by height. A new
-- block whose parent is not the hash kept for the height below is a reorg; the follower walks back through
-- these to the common ancestor. It keeps the newest --keep-hashes of them (128 by default); the next height to
-- publish is the highest kept plus one.
CREATE TABLE follow_blocks (
    job         text        NOT NULL,
    number      bigint      NOT NULL,
    hash        bytea       NOT NULL,
    PRIMARY KEY (job, number)
);

-- +goose Down
DROP TABLE follow_blocks;
