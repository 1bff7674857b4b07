// Package pgtest gives each test its own Postgres schema on the real server, migrated and dropped afterwards.
//
// The server is CHAINSINK_TEST_DATABASE_URL, or postgres://postgres@127.0.0.1:5432/test. A schema per test
// (rather than a database per test) keeps set-up at a few tens of milliseconds, lets tests run in parallel, and
// exercises the --schema option that production deployments use.
package pgtest
