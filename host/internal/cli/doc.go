// Package cli is the harden command line (urfave/cli/v2). Stdout carries only
// command output (text or JSON); logs, plugin logs and errors go to stderr.
//
// Exit codes:
//
//	0   all good
//	1   usage or configuration error (policy, flags, unknown plugin)
//	2   verify found failing checks at or above --fail-on; plan with
//	    --detailed-exitcode found pending changes
//	3   target or plugin error: a plugin crashed, hung or is not trusted, a
//	    target was unreachable, a check ended in status error, or a target
//	    produced zero checks
//	130 interrupted (Ctrl-C); in-flight plugin work was stopped
package cli
