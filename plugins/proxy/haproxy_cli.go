package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// HAProxy's master CLI (haproxy -W -S <socket>, management.txt §9.4): one
// command per connection, answered once the client has half-closed.

// maxCLIAnswer bounds what harden reads of one answer.
const maxCLIAnswer = 1 << 20

// masterCommand sends one command to the master CLI and reads the answer.
func masterCommand(ctx context.Context, socket, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("HAProxy master CLI %s: %w", socket, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("HAProxy master CLI %s: %s: %w", socket, command, err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
	data, err := io.ReadAll(io.LimitReader(c, maxCLIAnswer+1))
	if err != nil {
		return "", fmt.Errorf("HAProxy master CLI %s: %s: %w", socket, command, err)
	}
	if len(data) > maxCLIAnswer {
		return "", fmt.Errorf("HAProxy master CLI %s: %s: the answer is longer than %d bytes", socket, command, maxCLIAnswer)
	}
	return string(data), nil
}

// hapProcs is what `show proc` says.
type hapProcs struct {
	master, reloads, failed int
	workers                 []hapWorker
}

// hapWorker is one worker: its pid and how many reloads ago it started
// (0: the current generation).
type hapWorker struct {
	pid, reloads int
}

func showProc(ctx context.Context, socket string) (hapProcs, error) {
	out, err := masterCommand(ctx, socket, "show proc")
	if err != nil {
		return hapProcs{}, err
	}
	p, err := parseShowProc(out)
	if err != nil {
		return hapProcs{}, fmt.Errorf("HAProxy master CLI %s: show proc: %w", socket, err)
	}
	return p, nil
}

// parseShowProc reads `show proc` (HAProxy 2.6):
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	20356           master          1 [failed: 0]   0d00h10m15s     2.6.12
//	# workers
//	31771           worker          0               0d00h00m01s     2.6.12
//	# programs
//
// The answer is untrusted: anything but exactly one master line, and
// worker lines of that shape, is an error.
func parseShowProc(s string) (hapProcs, error) {
	var p hapProcs
	masters := 0
	section := "master"
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if h := strings.TrimSpace(strings.TrimPrefix(line, "#")); h == "workers" || h == "programs" {
				section = h
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return hapProcs{}, fmt.Errorf("unexpected line %q", truncate(line, 80))
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid <= 0 {
			return hapProcs{}, fmt.Errorf("unexpected line %q", truncate(line, 80))
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 0 {
			return hapProcs{}, fmt.Errorf("unexpected reload count in %q", truncate(line, 80))
		}
		switch {
		case f[1] == "master" && section == "master":
			// "1 [failed: 0]"
			if len(f) < 5 || f[3] != "[failed:" || !strings.HasSuffix(f[4], "]") {
				return hapProcs{}, fmt.Errorf("unexpected master line %q", truncate(line, 80))
			}
			failed, err := strconv.Atoi(strings.TrimSuffix(f[4], "]"))
			if err != nil || failed < 0 {
				return hapProcs{}, fmt.Errorf("unexpected master line %q", truncate(line, 80))
			}
			p.master, p.reloads, p.failed = pid, n, failed
			masters++
		case f[1] == "worker" && section == "workers":
			p.workers = append(p.workers, hapWorker{pid, n})
		case section == "programs":
		default:
			return hapProcs{}, fmt.Errorf("unexpected line %q", truncate(line, 80))
		}
	}
	if masters != 1 {
		return hapProcs{}, errors.New("no master line (is this HAProxy's master CLI?)")
	}
	return p, nil
}
