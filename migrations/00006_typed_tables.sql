-- +goose Up
-- The typed tables that `chainsink tables apply` generated from the configuration's contract sets, one row per
-- table: what it was generated from and the DDL that created it. A table is only ever added: apply refuses a
-- configuration whose DDL for a recorded table differs (a changed ABI), and never drops one.
CREATE TABLE typed_tables (
    table_name text        PRIMARY KEY,
    set_name   text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('event', 'call')),
    abi_name   text        NOT NULL,
    abi_hash   text        NOT NULL,
    signature  text        NOT NULL,
    ddl        text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The contracts a factory created, registered for a contract set by the factory's creation event (e.g. a
-- UniswapV2Factory PairCreated registers the pair for the set whose `factory:` names it). Keyed by the
-- creation log, so that replacing or orphaning the log removes the registration with it.
CREATE TABLE factory_children (
    block_number     bigint      NOT NULL,
    log_index        integer     NOT NULL,
    set_name         text        NOT NULL,
    address          bytea       NOT NULL,
    factory_address  bytea       NOT NULL,
    transaction_hash bytea       NOT NULL,
    block_timestamp  timestamptz NOT NULL,
    PRIMARY KEY (block_number, log_index, set_name)
);
CREATE INDEX factory_children_set_address_idx ON factory_children (set_name, address);

-- +goose Down
DROP TABLE factory_children;
DROP TABLE typed_tables;
