// Package e2e holds the end-to-end tests of the harden host: they build the
// harden binary and real plugin binaries (the echo test plugin, the shipped
// plugins) and drive them — through cli.Run in process or the binary as a
// child that can be signalled — against real servers (testenv), with
// go-plugin, the mutual TLS channel and the sha256 pin all in the path.
// Unit tests of the host's packages stay beside them; this package has no
// code of its own. The benchmarks of launch and `plugins list` are here too
// (scripts/bench.sh).
package e2e
