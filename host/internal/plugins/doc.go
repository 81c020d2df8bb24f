// Package plugins finds plugin binaries in explicit directories and pins them
// with a sha256 lock file. Only executables named harden-plugin-<name> are
// considered. A binary or lock file that anyone but root and the invoking
// user could change — through its owner, its mode or a directory above it —
// is refused (trust.go), because that user could run code as the operator.
package plugins
