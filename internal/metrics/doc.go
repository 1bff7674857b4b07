// Package metrics defines chainsink's Prometheus metrics in one place, on a registry of their own, so that
// tests can read exact values and two indexers in one test process do not collide.
package metrics
