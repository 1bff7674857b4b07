// Package logging builds the *slog.Logger that every chainsink command injects: JSON when stderr is not a
// terminal (a deployment's log pipeline parses it), text on a terminal (a person reads it).
package logging
