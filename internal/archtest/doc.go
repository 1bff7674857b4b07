// Package archtest holds the tests that keep the package structure what docs/architecture.md says it is: the
// package map (who imports whom) and the rule that the row model and the decoders are pure. It has no code of
// its own.
package archtest
