-- +goose Up
-- What token contracts say of themselves, one row per token address: read from the contract with eth_call
-- (source 'chain': `chainsink tokens --rpc`, or any producer of ethereum-etl token items) or taken from a
-- token list (source 'token_list': `chainsink tokens --list`). A row belongs to its address, not to a block,
-- so that reorgs and block replacements leave it alone; of two rows for an address the store keeps what the
-- chain said over a list, and of two chain reads the one at the earlier block.
CREATE TABLE tokens (
    address      bytea         PRIMARY KEY,
    name         text,
    symbol       text,
    decimals     integer       CHECK (decimals BETWEEN 0 AND 255),
    total_supply numeric(78,0),
    standard     text,
    block_number bigint,
    source       text          NOT NULL CHECK (source IN ('chain', 'token_list')),
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX tokens_symbol_idx ON tokens (symbol);

COMMENT ON TABLE tokens IS 'token metadata by address: name(), symbol(), decimals(), totalSupply() as first read from the chain, or a token list''s entry';
COMMENT ON COLUMN tokens.decimals IS 'decimals(); NULL when the call reverted or returned more than 255';
COMMENT ON COLUMN tokens.total_supply IS 'totalSupply() at block_number';
COMMENT ON COLUMN tokens.block_number IS 'the block the contract was read at; NULL for a token list''s entry';
COMMENT ON COLUMN tokens.source IS 'chain (read with eth_call) or token_list';

-- Token transfers with the token's symbol and the amount in whole tokens. amount is exact: the raw value times
-- 10^-decimals as a numeric literal, so it has exactly `decimals` digits after the point (power() would
-- round to 16). It is NULL where decimals are not known and for ERC-721 and ERC-1155 transfers, whose value
-- counts items, not fractions.
CREATE VIEW token_transfers_scaled AS
SELECT t.block_number, t.log_index, t.batch_index, t.transaction_hash, t.block_timestamp, t.token_address,
       t.from_address, t.to_address, t.token_id, t.value, t.standard,
       k.symbol, k.name AS token_name, k.decimals,
       CASE WHEN t.standard = 'erc20' THEN t.value * ('1e-' || k.decimals)::numeric END AS amount
FROM token_transfers t
LEFT JOIN tokens k ON k.address = t.token_address;

COMMENT ON VIEW token_transfers_scaled IS 'token_transfers with the token''s symbol and the amount scaled by its decimals (exact numeric)';

-- +goose Down
DROP VIEW token_transfers_scaled;
DROP TABLE tokens;
