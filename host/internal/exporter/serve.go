package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/host/internal/report"
)

// Listen binds addr before the first run, so a port already in use (or an
// address that is not this host's) is the operator's error at once, naming
// the address, instead of minutes later after a scan.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, errors.New("--listen: want host:port, e.g. 127.0.0.1:9808")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("--listen %s: the address is already in use (another exporter, or another program, listens there)", addr)
		}
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	return ln, nil
}

// Options of Serve.
type Options struct {
	Info
	// Collect runs verify and the inventory once. It opens its own session
	// each time, so a plugin that crashed in one run starts afresh in the
	// next.
	Collect func(ctx context.Context) (*report.Run, error)
	// Fatal: an error of the first run that ends the exporter (a policy
	// that does not load, a plugin refused) rather than being exported.
	Fatal func(error) bool
	// Log receives one line per run.
	Log io.Writer
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Serve serves ln and runs Collect at once and then every Interval (from
// one run's start to the next; a run that takes longer is followed at
// once) until ctx ends, then shuts the server down gracefully and returns
// nil. The first run's error ends it when Fatal says so.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	if o.Interval <= 0 {
		return fmt.Errorf("--interval %v: want a positive duration", o.Interval)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	st := NewState(o.Info)
	srv := &http.Server{Handler: st.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// shutdown lets scrapes in flight finish for up to 2 s, then closes
	// what is left: connections a client opened but never sent a request
	// on count as busy for 5 s in http.Server.Shutdown, and waiting for
	// them would only delay the exit.
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
			srv.Close()
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	fmt.Fprintf(o.Log, "harden exporter: serving http://%s/metrics; verify and inventory of %s every %v\n", ln.Addr(), o.Policy, o.Interval)
	for first := true; ; first = false {
		start := now()
		run, err := o.Collect(ctx)
		if ctx.Err() != nil {
			// Interrupted mid-run: nothing half-read is exported.
			break
		}
		if first && err != nil && o.Fatal != nil && o.Fatal(err) {
			shutdown()
			return err
		}
		end := now()
		snap := st.Observe(run, err, end, end.Sub(start))
		fmt.Fprintln(o.Log, runLine(snap, run, err, end.Sub(start)))
		if snap.Err != nil {
			fmt.Fprintf(o.Log, "harden exporter: BUG: part of the metrics could not be exported: %v\n", snap.Err)
		}
		wait := o.Interval - now().Sub(start)
		if wait < 0 {
			wait = 0
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case err := <-served:
			timer.Stop()
			return fmt.Errorf("exporter: serving %s: %w", ln.Addr(), err)
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := shutdown(); err != nil {
		return fmt.Errorf("exporter: shut down %s: %w", ln.Addr(), err)
	}
	fmt.Fprintln(o.Log, "harden exporter: stopped")
	return nil
}

// runLine is the log line of one run: what was read, what was not.
func runLine(snap *Snapshot, run *report.Run, err error, took time.Duration) string {
	head := fmt.Sprintf("harden exporter: run %d", snap.Runs)
	if err != nil || run == nil {
		return fmt.Sprintf("%s failed after %v: %s (every target keeps its last good values, marked stale)", head, took.Round(time.Millisecond), strings.Join(snap.Problems, "; "))
	}
	state := "read everything"
	if !snap.OK {
		state = "did not read everything (" + strings.Join(snap.Problems, "; ") + ")"
	}
	return fmt.Sprintf("%s %s in %v: %d target(s), %d series", head, state, took.Round(time.Millisecond), len(run.Targets), snap.Series)
}
