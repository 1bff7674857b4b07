-- +goose Up
-- Every call frame of every transaction, as the node's callTracer reports it (debug_traceBlockByNumber, in a
-- bundle's optional "traces"): the transaction's own call at trace_address '{}', and each call, create and
-- selfdestruct it made, at any depth. Replaced with its block like every table of a bundle.
CREATE TABLE traces (
    block_number      bigint        NOT NULL,
    transaction_index integer       NOT NULL,
    trace_address     integer[]     NOT NULL,
    transaction_hash  bytea         NOT NULL,
    block_timestamp   timestamptz   NOT NULL,
    type              text          NOT NULL,
    trace_type        text          NOT NULL CHECK (trace_type IN ('call', 'create', 'suicide')),
    from_address      bytea         NOT NULL,
    to_address        bytea,
    value             numeric(78,0),
    gas               bigint,
    gas_used          bigint,
    input             bytea,
    output            bytea,
    error             text,
    status            smallint      NOT NULL,
    subtraces         integer       NOT NULL,
    PRIMARY KEY (block_number, transaction_index, trace_address)
);
CREATE INDEX traces_to_block_idx ON traces (to_address, block_number);
CREATE INDEX traces_from_block_idx ON traces (from_address, block_number);

COMMENT ON TABLE traces IS 'call frames of transactions (callTracer): internal calls, creates and selfdestructs';
COMMENT ON COLUMN traces.trace_address IS 'path from the transaction''s own frame ({} ): {0} is its first subcall, {0,2} the third subcall of that one';
COMMENT ON COLUMN traces.type IS 'callTracer type, lower case: call, staticcall, delegatecall, callcode, create, create2, selfdestruct';
COMMENT ON COLUMN traces.trace_type IS 'Parity/ethereum-etl class: call, create or suicide';
COMMENT ON COLUMN traces.to_address IS 'callee; for a create, the created contract (NULL when the create failed); for a selfdestruct, the beneficiary';
COMMENT ON COLUMN traces.value IS 'wei moved with the frame (NULL for staticcall and delegatecall, which move none)';
COMMENT ON COLUMN traces.output IS 'return data; for a create, the deployed runtime code';
COMMENT ON COLUMN traces.status IS '1 when the frame and every frame above it succeeded, 0 when its effects were reverted';

-- The contracts created on chain: one row per successful create, from the create frames of traces when the
-- bundle has them (every create, at any depth, with the deployed code), otherwise from the receipt's
-- contractAddress (contracts created by transactions; the code is then not known). Replaced with its
-- transaction like the traces it comes from.
CREATE TABLE contracts (
    block_number      bigint      NOT NULL,
    transaction_index integer     NOT NULL,
    trace_address     integer[]   NOT NULL,
    address           bytea       NOT NULL,
    transaction_hash  bytea       NOT NULL,
    block_timestamp   timestamptz NOT NULL,
    deployer          bytea       NOT NULL,
    code_hash         bytea,
    code_size         integer,
    is_erc20          boolean,
    is_erc721         boolean,
    is_erc1155        boolean,
    PRIMARY KEY (block_number, transaction_index, trace_address)
);
CREATE INDEX contracts_address_idx ON contracts (address);

COMMENT ON TABLE contracts IS 'contracts created on chain: from create traces (any depth, with code) or receipts (transactions only, code unknown)';
COMMENT ON COLUMN contracts.trace_address IS 'the create frame in traces; {} for a contract created by the transaction itself';
COMMENT ON COLUMN contracts.deployer IS 'who ran the create: the transaction''s sender, or the contract whose frame created it';
COMMENT ON COLUMN contracts.code_hash IS 'keccak256 of the deployed runtime code; NULL when the bundle had no traces';
COMMENT ON COLUMN contracts.is_erc20 IS 'the code dispatches every ERC-20 function (ethereum-etl''s rule); NULL when the code is not known';

-- +goose Down
DROP TABLE contracts;
DROP TABLE traces;
