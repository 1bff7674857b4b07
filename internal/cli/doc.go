// Package cli wires chainsink's commands (cobra) to the packages that do the work. It parses and validates
// flags and CHAINSINK_* environment variables at the edge, builds the logger, and turns errors into exit codes;
// it holds no logic of its own.
package cli
