// Package server serves chainsink's operational endpoints: /metrics (Prometheus), /healthz (the process is
// alive and its poll loop turns) and /readyz (Postgres answers, the consumer has joined its group, and no
// partition has been retrying one batch for too long).
package server
