// Package bench is `make bench` (cmd/chainsink-bench): it measures, in one run on one machine, how fast the
// real `chainsink run` binary stores renumbered copies of mainnet block 17173049 compared with a plain binary
// COPY of the same rows (the ceiling) and with batched INSERT … ON CONFLICT DO NOTHING (the baseline, what a
// generic JDBC sink does), how that speed changes as the tables grow and when secondary indexes are deferred,
// and how much memory chainsink needs while it drains a large backlog. See docs/performance.md.
//
// Every scenario runs on a fresh, migrated schema of the database it creates (chainsink_bench by default),
// with every index live unless it says otherwise. It is a measurement, not a test: nothing here asserts a time.
package bench
