package chain

// Failure sends a message to dead_letters instead of the tables.
type Failure struct {
	// Reason is a short, stable category for dashboards and `chainsink status`, e.g. "invalid_json".
	Reason string
	// Err is the full explanation stored with the message.
	Err error
}
