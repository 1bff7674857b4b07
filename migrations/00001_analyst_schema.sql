-- +goose Up
-- The analyst schema. Table and column names are a public contract: dashboards and other tools query them.
-- Conventions: hashes, addresses, calldata and log data are bytea (use hex()/unhex() below to read and write
-- them as 0x-text); 256-bit integers are numeric(78,0); block times are timestamptz.
-- Every primary key starts with the block number, so replacing a block (reorg or duplicate delivery) is a
-- range delete on the primary key index.

-- +goose StatementBegin
CREATE FUNCTION hex(b bytea) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN '0x' || encode(b, 'hex');
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION unhex(t text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN decode(CASE WHEN lower(left(t, 2)) = '0x' THEN substr(t, 3) ELSE t END, 'hex');
-- +goose StatementEnd

CREATE TABLE blocks (
    number                   bigint        PRIMARY KEY,
    hash                     bytea         NOT NULL,
    parent_hash              bytea         NOT NULL,
    "timestamp"              timestamptz   NOT NULL,
    miner                    bytea         NOT NULL,
    gas_used                 bigint        NOT NULL,
    gas_limit                bigint        NOT NULL,
    base_fee_per_gas         numeric(78,0),
    transaction_count        integer       NOT NULL,
    size                     bigint,
    nonce                    bytea,
    difficulty               numeric(78,0),
    total_difficulty         numeric(78,0),
    extra_data               bytea,
    mix_hash                 bytea,
    sha3_uncles              bytea,
    logs_bloom               bytea,
    transactions_root        bytea,
    state_root               bytea,
    receipts_root            bytea,
    withdrawals_root         bytea,
    withdrawal_count         integer,
    blob_gas_used            bigint,
    excess_blob_gas          bigint,
    parent_beacon_block_root bytea,
    requests_hash            bytea
);
CREATE INDEX blocks_timestamp_idx ON blocks ("timestamp");

-- Beacon-chain withdrawals credited in a block (Shanghai and later). amount is in gwei, as on the wire.
CREATE TABLE withdrawals (
    block_number     bigint  NOT NULL,
    withdrawal_index bigint  NOT NULL,
    position         integer NOT NULL,
    validator_index  bigint  NOT NULL,
    address          bytea   NOT NULL,
    amount_gwei      numeric(78,0) NOT NULL,
    PRIMARY KEY (block_number, position)
);

CREATE TABLE transactions (
    block_number             bigint        NOT NULL,
    transaction_index        integer       NOT NULL,
    hash                     bytea         NOT NULL,
    block_hash               bytea         NOT NULL,
    block_timestamp          timestamptz   NOT NULL,
    from_address             bytea         NOT NULL,
    to_address               bytea,
    value                    numeric(78,0) NOT NULL,
    gas                      bigint        NOT NULL,
    gas_price                numeric(78,0),
    max_fee_per_gas          numeric(78,0),
    max_priority_fee_per_gas numeric(78,0),
    max_fee_per_blob_gas     numeric(78,0),
    type                     smallint      NOT NULL,
    nonce                    bigint        NOT NULL,
    input                    bytea         NOT NULL,
    method_id                bytea,
    status                   smallint,
    root                     bytea,
    gas_used                 bigint,
    cumulative_gas_used      bigint,
    effective_gas_price      numeric(78,0),
    contract_address         bytea,
    blob_gas_used            bigint,
    blob_gas_price           numeric(78,0),
    PRIMARY KEY (block_number, transaction_index)
);
-- Not UNIQUE on purpose: blocks of different heights travel on different partitions, so during a reorg the
-- replacement of height N may land before the orphaned height N+1 that carried the same transaction is
-- replaced. A unique index would turn that legal, transient state into a rejected batch.
CREATE INDEX transactions_hash_idx ON transactions (hash);
CREATE INDEX transactions_to_address_idx ON transactions (to_address, block_number);

CREATE TABLE logs (
    block_number      bigint      NOT NULL,
    log_index         integer     NOT NULL,
    transaction_hash  bytea       NOT NULL,
    transaction_index integer     NOT NULL,
    block_timestamp   timestamptz NOT NULL,
    address           bytea       NOT NULL,
    topic0            bytea,
    topic1            bytea,
    topic2            bytea,
    topic3            bytea,
    data              bytea       NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX logs_address_block_idx ON logs (address, block_number);
CREATE INDEX logs_topic0_block_idx ON logs (topic0, block_number);

CREATE TABLE token_transfers (
    block_number     bigint        NOT NULL,
    log_index        integer       NOT NULL,
    batch_index      integer       NOT NULL DEFAULT 0,
    transaction_hash bytea         NOT NULL,
    block_timestamp  timestamptz   NOT NULL,
    token_address    bytea         NOT NULL,
    from_address     bytea         NOT NULL,
    to_address       bytea         NOT NULL,
    token_id         numeric(78,0),
    value            numeric(78,0) NOT NULL,
    standard         text          NOT NULL CHECK (standard IN ('erc20', 'erc721', 'erc1155')),
    PRIMARY KEY (block_number, log_index, batch_index)
);
CREATE INDEX token_transfers_token_block_idx ON token_transfers (token_address, block_number);
CREATE INDEX token_transfers_from_block_idx ON token_transfers (from_address, block_number);
CREATE INDEX token_transfers_to_block_idx ON token_transfers (to_address, block_number);

CREATE TABLE events (
    block_number     bigint      NOT NULL,
    log_index        integer     NOT NULL,
    transaction_hash bytea       NOT NULL,
    block_timestamp  timestamptz NOT NULL,
    address          bytea       NOT NULL,
    event_name       text        NOT NULL,
    signature        text        NOT NULL,
    abi_name         text        NOT NULL,
    args             jsonb       NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX events_address_name_block_idx ON events (address, event_name, block_number);

CREATE TABLE calls (
    block_number      bigint      NOT NULL,
    transaction_index integer     NOT NULL,
    transaction_hash  bytea       NOT NULL,
    block_timestamp   timestamptz NOT NULL,
    to_address        bytea,
    status            smallint,
    method_name       text        NOT NULL,
    signature         text        NOT NULL,
    abi_name          text        NOT NULL,
    args              jsonb       NOT NULL,
    PRIMARY KEY (block_number, transaction_index)
);
CREATE INDEX calls_to_method_block_idx ON calls (to_address, method_name, block_number);

-- Progress of every (consumer group, topic, partition): the offset of the next message to read. Advanced by a
-- compare-and-set in the same transaction as the rows, which is what makes storage exactly-once.
CREATE TABLE kafka_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE dead_letters (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    value          bytea,
    reason         text        NOT NULL,
    error          text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_group, topic, partition, "offset")
);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE kafka_offsets;
DROP TABLE calls;
DROP TABLE events;
DROP TABLE token_transfers;
DROP TABLE logs;
DROP TABLE transactions;
DROP TABLE withdrawals;
DROP TABLE blocks;
DROP FUNCTION unhex(text);
DROP FUNCTION hex(bytea);
