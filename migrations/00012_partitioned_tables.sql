-- +goose Up
-- The big tables become range-partitioned by block_number (declarative partitioning), so that the indexes a
-- batch writes into are those of its own range, not of all history, and retention drops whole partitions.
--
-- Each table keeps its name, columns, comments, primary key and index names; its rows stay where they are:
-- the existing table becomes the partition <name>_p0 for heights [0, highest stored + 1) (attached, not
-- copied: the attach reads it once to check the range, and its indexes become the partitioned indexes'
-- partitions), or is dropped when empty. Every table gets a default partition, <name>_default, so that a
-- height without a partition of its own is stored there rather than failing a batch. Partitions for new
-- heights are created ahead of the data by `chainsink run` (store.Partitioner), aligned to its
-- --partition-blocks; see docs/operations.md, "Partitions".
--
-- Blocks, withdrawals and contracts stay unpartitioned: one or a few rows per block, read by their keys.

-- chainsink_partition_name(parent, suffix) is the name of one of parent's partitions: parent || suffix,
-- shortened to Postgres's 63 bytes (start of the name, _, 8 hex digits of md5(parent), suffix) so that
-- partitions of long typed-table names cannot collide.
-- +goose StatementBegin
CREATE FUNCTION chainsink_partition_name(parent text, suffix text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN octet_length(parent || suffix) <= 63 THEN parent || suffix
                ELSE left(parent, 63 - octet_length(suffix) - 9) || '_' || left(md5(parent), 8) || suffix END;
-- +goose StatementEnd

-- chainsink_partition_by_block(t) turns the table t of the current schema into a table partitioned by range
-- of block_number, as described above. `chainsink tables apply` calls it for every typed table it creates.
-- +goose StatementBegin
CREATE FUNCTION chainsink_partition_by_block(t text) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    old  text := chainsink_partition_name(t, '_p0');
    head bigint;
    pk   text;
    pk_def text;
    ix   record;
    defs text[] := '{}';
    cmt  text;
    v    record;
    views text[] := '{}';
BEGIN
    -- Gone (a typed table dropped by hand, its registry row left) or partitioned already: nothing to do.
    IF to_regclass(quote_ident(t)) IS NULL
       OR EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(quote_ident(t))) THEN
        RETURN;
    END IF;
    SELECT conname, pg_get_constraintdef(oid) INTO pk, pk_def
    FROM pg_constraint WHERE conrelid = quote_ident(t)::regclass AND contype = 'p';
    -- The secondary indexes, as created, to build again on the partitioned table under their names.
    FOR ix IN SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = quote_ident(t)::regclass AND NOT i.indisprimary LOOP
        defs := defs || ix.def;
        EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.relname, chainsink_partition_name(ix.relname, '_p0'));
    END LOOP;
    -- A view names its tables by identity: over the renamed table it would go on reading it alone. Views
    -- that read t are dropped and created again from their definitions over the new table.
    FOR v IN SELECT DISTINCT c.oid, c.relkind FROM pg_depend d
             JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class c ON c.oid = r.ev_class
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = quote_ident(t)::regclass
               AND c.oid <> quote_ident(t)::regclass LOOP
        IF v.relkind <> 'v' THEN
            RAISE EXCEPTION 'materialized view % reads %: drop it before this migration and create it again after', v.oid::regclass, t;
        END IF;
        views := views || format('CREATE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid));
        IF obj_description(v.oid, 'pg_class') IS NOT NULL THEN
            views := views || format('COMMENT ON VIEW %s IS %L', v.oid::regclass, obj_description(v.oid, 'pg_class'));
        END IF;
        EXECUTE format('DROP VIEW %s', v.oid::regclass);
    END LOOP;
    cmt := obj_description(quote_ident(t)::regclass, 'pg_class');
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
    EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', old, pk, chainsink_partition_name(pk, '_p0'));
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS '
        'INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION) '
        'PARTITION BY RANGE (block_number)', t, old);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, pk, pk_def);
    FOR i IN 1 .. coalesce(array_length(defs, 1), 0) LOOP
        EXECUTE defs[i];
    END LOOP;
    IF cmt IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %I IS %L', t, cmt);
    END IF;
    EXECUTE format('SELECT max(block_number) FROM %I', old) INTO head;
    IF head IS NULL THEN
        EXECUTE format('DROP TABLE %I', old);
    ELSE
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (0) TO (%s)', t, old, head + 1);
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', chainsink_partition_name(t, '_default'), t);
    FOR i IN 1 .. coalesce(array_length(views, 1), 0) LOOP
        EXECUTE views[i];
    END LOOP;
END
$fn$;
-- +goose StatementEnd

SELECT chainsink_partition_by_block(t) FROM unnest(ARRAY['transactions', 'logs', 'token_transfers', 'events',
    'calls', 'traces']) AS t;
SELECT chainsink_partition_by_block(table_name) FROM typed_tables ORDER BY table_name;

-- What each retention run dropped whole (partitions entirely below its horizon) besides what it deleted.
ALTER TABLE retention_runs ADD COLUMN dropped_partitions text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE retention_runs DROP COLUMN dropped_partitions;

-- chainsink_unpartition(t) copies a partitioned table's rows into one plain table of the same name, columns,
-- comments and indexes.
-- +goose StatementBegin
CREATE FUNCTION pg_temp.chainsink_unpartition(t text) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    tmp  text := chainsink_partition_name(t, '_partitioned');
    pk   text;
    pk_def text;
    ix   record;
    defs text[] := '{}';
    cmt  text;
    v    record;
    views text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(quote_ident(t))) THEN
        RETURN;
    END IF;
    SELECT conname, pg_get_constraintdef(oid) INTO pk, pk_def
    FROM pg_constraint WHERE conrelid = quote_ident(t)::regclass AND contype = 'p';
    FOR ix IN SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = quote_ident(t)::regclass AND NOT i.indisprimary LOOP
        defs := defs || replace(ix.def, 'ON ONLY ', 'ON ');
        EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.relname, chainsink_partition_name(ix.relname, '_partitioned'));
    END LOOP;
    -- A view names its tables by identity: over the renamed table it would go on reading it alone. Views
    -- that read t are dropped and created again from their definitions over the new table.
    FOR v IN SELECT DISTINCT c.oid, c.relkind FROM pg_depend d
             JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class c ON c.oid = r.ev_class
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = quote_ident(t)::regclass
               AND c.oid <> quote_ident(t)::regclass LOOP
        IF v.relkind <> 'v' THEN
            RAISE EXCEPTION 'materialized view % reads %: drop it before this migration and create it again after', v.oid::regclass, t;
        END IF;
        views := views || format('CREATE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid));
        IF obj_description(v.oid, 'pg_class') IS NOT NULL THEN
            views := views || format('COMMENT ON VIEW %s IS %L', v.oid::regclass, obj_description(v.oid, 'pg_class'));
        END IF;
        EXECUTE format('DROP VIEW %s', v.oid::regclass);
    END LOOP;
    cmt := obj_description(quote_ident(t)::regclass, 'pg_class');
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, tmp);
    EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', tmp, pk, chainsink_partition_name(pk, '_partitioned'));
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS '
        'INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION)', t, tmp);
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, tmp);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, pk, pk_def);
    FOR i IN 1 .. coalesce(array_length(defs, 1), 0) LOOP
        EXECUTE defs[i];
    END LOOP;
    IF cmt IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %I IS %L', t, cmt);
    END IF;
    EXECUTE format('DROP TABLE %I', tmp);
    FOR i IN 1 .. coalesce(array_length(views, 1), 0) LOOP
        EXECUTE views[i];
    END LOOP;
END
$fn$;
-- +goose StatementEnd

SELECT pg_temp.chainsink_unpartition(table_name) FROM typed_tables ORDER BY table_name;
SELECT pg_temp.chainsink_unpartition(t) FROM unnest(ARRAY['transactions', 'logs', 'token_transfers', 'events',
    'calls', 'traces']) AS t;
DROP FUNCTION chainsink_partition_by_block(text);
DROP FUNCTION chainsink_partition_name(text, text);
