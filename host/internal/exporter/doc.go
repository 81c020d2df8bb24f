// Package exporter is `harden exporter`: it runs verify and the inventory on
// a schedule and serves the last completed run as Prometheus metrics.
//
// A scrape never starts a scan. Each run is folded into a State (state.go),
// which keeps, per target, the last values it could read: a certificate the
// latest run could not read (its server is down, the plugin crashed) stays
// exported with its last known not_after and the target is marked stale, so
// "expired" keeps alerting instead of vanishing as blackbox_exporter's
// expiry metrics do (blackbox_exporter #1119). The State turns each run into
// an immutable Snapshot of metric families (collector.go), encoded once and
// swapped atomically; /metrics writes that snapshot and nothing else.
//
// The metric names, their help text and labels are in metrics.go; the alert
// rules that read them ship in deploy/prometheus/harden-rules.yml.
package exporter
