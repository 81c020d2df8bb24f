// Package cli is the harden command line (urfave/cli/v2). Stdout carries only
// command output (text or JSON); logs, plugin logs and errors go to stderr.
//
// Exit codes:
//
//	0   all good
//	1   usage or configuration error (policy, flags and their values,
//	    unknown plugin, a file the policy names that is missing, not
//	    regular, too big or a secret others may read, a certificate
//	    outside its validity)
//	2   verify found failing checks at or above --fail-on; plan with
//	    --detailed-exitcode found pending changes; rotate refused a target
//	    (another pending change) or found a files certificate due
//	3   target or plugin error: a plugin crashed, hung or is not trusted, a
//	    target was unreachable, a check ended in status error, a plugin sent
//	    an invalid check (unknown status or severity, invalid ID), a target
//	    produced zero checks or only skipped ones (nothing applicable was
//	    verified), or the certificate source could not provide the CA;
//	    inventory: something could not be read and nothing below was found;
//	    rotate: a target or client in error, or rolled back;
//	    rotate --schedule: no certificate held to schedule, or a held
//	    certificate file could not be read
//	4-7 inventory only, the most urgent item decides: 4 a certificate in
//	    the widest alert tier (30d) or a key with rotation disabled or
//	    overdue, 5 in a tier between (14d), 6 in the narrowest (7d), 7
//	    expired or not valid yet
//	130 interrupted (SIGINT/SIGTERM): during apply the plugin finishes or
//	    rolls back its current step first (up to 60 s; a second signal
//	    kills it at once, and the next run recovers from its journal);
//	    any other command stops at once
//
// verify's rules on what plugins send are in verdict.go.
package cli
