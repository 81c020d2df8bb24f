// Package plugins finds plugin binaries in explicit directories and pins them
// with a sha256 lock file. Only executables named harden-plugin-<name> are
// considered; group- or world-writable binaries are refused because anyone
// who can rewrite them could run code as the operator.
package plugins
