package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
)

// badServer accepts connections and treats each with handle.
func badServer(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// pgFatal is a PostgreSQL ErrorResponse.
func pgFatal(code, msg string) []byte {
	var body []byte
	for _, f := range [][2]string{{"S", "FATAL"}, {"C", code}, {"M", msg}} {
		body = append(append(append(body, f[0][0]), f[1]...), 0)
	}
	body = append(body, 0)
	return append(append([]byte{'E'}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...), body...)
}

// pgBusy is a PostgreSQL that declines TLS ('N') and answers every session
// with code: starting up (57P03) or at max_connections (53300).
func pgBusy(code, msg string) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if binary.BigEndian.Uint32(hdr[4:]) == 80877103 {
			c.Write([]byte("N"))
			if _, err := io.ReadFull(c, hdr[:4]); err != nil {
				return
			}
		}
		c.Write(pgFatal(code, msg))
	}
}

// Bad endpoints get one clear answer: exit 3 (could not verify), the
// reason in the evidence, and never a refusal or a pass.
func TestScanBadEndpoints(t *testing.T) {
	tests := map[string]struct {
		handle  func(net.Conn)
		dialect string
		reason  string
	}{
		"garbage": {handle: func(c net.Conn) { c.Write([]byte("\x00\x01 this is not TLS\r\n")); time.Sleep(50 * time.Millisecond) },
			dialect: "none", reason: "not TLS"},
		"reset": {handle: func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
		}, dialect: "none", reason: "reset"},
		"stall":          {handle: func(c net.Conn) { io.Copy(io.Discard, c) }, dialect: "none", reason: "timed out"},
		"pg starting up": {handle: pgBusy("57P03", "the database system is starting up"), dialect: "postgres", reason: "57P03"},
		"pg at max connections": {handle: pgBusy("53300", "sorry, too many clients already"), dialect: "postgres",
			reason: "53300"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr := badServer(t, tc.handle)
			cmd := exec.Command(hardenBin, "scan", "--starttls", tc.dialect, "--timeout", "300ms", "--format", "json", addr)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitTarget {
				t.Fatalf("exit %v, want %d (stderr %s)", err, cli.ExitTarget, stderr.String())
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v", took)
			}
			var doc struct {
				Endpoints []struct {
					Inconclusive int
					Checks       []struct{ ID, Status, Evidence string }
				}
			}
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || len(doc.Endpoints) != 1 {
				t.Fatalf("report: %v\n%s", err, stdout.String())
			}
			e := doc.Endpoints[0]
			found := false
			for _, c := range e.Checks {
				if c.Status == "pass" {
					t.Errorf("%s passes on a %s endpoint: %s", c.ID, name, c.Evidence)
				}
				if c.Status == "error" && strings.Contains(c.Evidence, tc.reason) {
					found = true
				}
			}
			if !found || e.Inconclusive == 0 {
				t.Errorf("no error check naming %q (inconclusive %d): %+v", tc.reason, e.Inconclusive, e.Checks)
			}
			if !strings.Contains(stderr.String(), "could not run") {
				t.Errorf("stderr does not say what could not run: %s", stderr.String())
			}
		})
	}
}
