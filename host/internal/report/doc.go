// Package report is harden's one finding model: what verify, scan, plan,
// apply, render and inventory found, as data (Run), and every format it is
// rendered in — text, JSON (format_version 1), SARIF 2.1.0, JUnit XML and
// the self-contained HTML dashboard. `harden report` merges JSON runs
// (shards of a fleet, or a history) back into one Run; the exporter serves
// the last Run as Prometheus metrics.
package report
