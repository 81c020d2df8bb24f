package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/checks"
)

// The observation model. Every attempt the probe makes ends in one of three
// outcomes:
//
//   - Accepted: the server went along (a ServerHello for the offered
//     version, an answer to an application request);
//   - Refused: the server said no in its own words — a TLS alert, a
//     ServerHello for another version, PostgreSQL's 'N' to an SSLRequest or
//     an SQLSTATE 28000 pg_hba rejection, an HTTP 400 telling the client to
//     use HTTPS. Each dialect lists what counts (dialect.go, kafka.go);
//   - Inconclusive: nothing could be concluded — a timeout, a reset, a close
//     without an answer, bytes that are not the protocol, a truncated
//     record, a reply the dialect does not recognise as a refusal. The
//     reason is kept as evidence.
//
// Transient failures (timeouts, resets, closes, garbled answers) are retried
// a bounded number of times before they become inconclusive; a healthy
// server that answers every attempt pays nothing for this.

// Outcome of one attempt on the wire.
type Outcome int

const (
	// NotAttempted: the dialect has nothing to attempt (e.g. plain TLS has
	// no plaintext session).
	NotAttempted Outcome = iota
	Accepted
	Refused
	Inconclusive
)

var outcomeNames = []string{"not attempted", "accepted", "refused", "inconclusive"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Observation is one attempt's outcome with its evidence: the server's own
// answer, or for Inconclusive the reason.
type Observation struct {
	Outcome  Outcome
	Evidence string
}

func accepted(format string, args ...any) Observation {
	return Observation{Accepted, fmt.Sprintf(format, args...)}
}

func refused(format string, args ...any) Observation {
	return Observation{Refused, fmt.Sprintf(format, args...)}
}

func inconclusive(format string, args ...any) Observation {
	return Observation{Inconclusive, fmt.Sprintf(format, args...)}
}

// Judge turns the observation into a check observation: what the policy
// wants (acceptance or refusal) decides good or bad; an inconclusive or
// missing attempt is never good.
func (o Observation) Judge(want Outcome, what string) checks.Observation {
	switch o.Outcome {
	case Inconclusive:
		return checks.Unknown(what, o.Evidence)
	case NotAttempted:
		return checks.Unknown(what, "not attempted")
	case want:
		return checks.Good(o.Evidence)
	}
	return checks.Bad(o.Evidence)
}

// said prefixes a conclusive observation's evidence with what it means
// (inconclusive evidence already says what was attempted).
func (o Observation) said(ifRefused, ifAccepted string) Observation {
	switch o.Outcome {
	case Refused:
		o.Evidence = ifRefused + o.Evidence
	case Accepted:
		o.Evidence = ifAccepted + o.Evidence
	}
	return o
}

// transientError marks a failure worth another attempt; after the last
// attempt it becomes an Inconclusive observation with this reason.
type transientError struct {
	reason string
	err    error
}

func (e *transientError) Error() string {
	if e.err == nil {
		return e.reason
	}
	return e.reason + ": " + e.err.Error()
}
func (e *transientError) Unwrap() error { return e.err }

// transient wraps err (a network or parse failure) as a transient failure
// with a short, stable description of what happened.
func transient(what string, err error) error {
	var te *transientError
	if errors.As(err, &te) {
		return err
	}
	return &transientError{reason: what + ": " + failureKind(err), err: err}
}

// failureKind names a network failure the way an operator reads it.
func failureKind(err error) string {
	switch {
	case err == nil:
		return "no answer"
	case isTimeout(err):
		return "timed out (no answer within the connection timeout)"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the peer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listening)"
	case errors.Is(err, syscall.EPIPE):
		return "connection closed by the peer while writing"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed in the middle of a message (truncated)"
	case errors.Is(err, io.EOF):
		return "connection closed without an answer"
	case errors.Is(err, errNotTLS):
		return "answer is not TLS"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// remoteAlert reports whether err is a TLS alert the server sent (Go's
// crypto/tls wraps those as net.OpError "remote error"), with its text.
func remoteAlert(err error) (string, bool) {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return oe.Err.Error(), true
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		// A local alert: Go refused something itself; not the server's word.
		return "", false
	}
	return "", false
}

// Retry policy. Attempts for a transient failure; a timeout is retried only
// while the endpoint has not timed out before (a stalled endpoint costs
// about two connection timeouts, not one per attempt).
const maxAttempts = 3

func backoff(attempt int) time.Duration {
	base := 15 * time.Millisecond << (2 * attempt) // 15 ms, 60 ms
	return base + rand.N(base)
}

// attempt runs one observation with bounded retries: fn returns an
// Observation, or a transient error to try again. The endpoint budget
// (ctx) ends retries early.
func (s *scanner) attempt(ctx context.Context, what string, fn func() (Observation, error)) Observation {
	var last error
	for i := range maxAttempts {
		if i > 0 {
			t := time.NewTimer(backoff(i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return inconclusive("%s: %s (endpoint budget of %s exhausted)", what, failureKind(last), s.opts.Budget)
			case <-t.C:
			}
		}
		o, err := fn()
		if err == nil {
			return o
		}
		last = err
		if ctx.Err() != nil {
			return inconclusive("%s: %s (endpoint budget of %s exhausted)", what, failureKind(err), s.opts.Budget)
		}
		if isTimeout(err) && s.timedOut.Swap(true) {
			break // the endpoint stalled before: do not wait again
		}
		if i+1 < maxAttempts {
			s.retries.Add(1)
		}
	}
	var te *transientError
	if errors.As(last, &te) {
		return inconclusive("%s", te.Error())
	}
	return inconclusive("%s: %s", what, failureKind(last))
}
