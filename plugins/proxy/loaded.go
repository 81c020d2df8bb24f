package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// A file written after the proxy last loaded its configuration is not
// what the proxy runs: nginx and HAProxy read their files at start and at
// a reload only, and each reload starts new worker processes (HAProxy's
// master re-executes itself and forks a new worker; nginx's master forks
// new workers). So when the newest worker of the master in pid_file
// started before a file harden owns was last written, the running proxy
// has not loaded that file — the rendered files copied into place by
// configuration management and never reloaded, say. The opposite proves
// less (a worker respawned after a crash runs the master's old
// configuration), which is why this only ever holds a route's facts back
// and the live evidence (the front's certificate, the canary's refusal of
// the decoy) is still required for a pass.

// loadSlack absorbs the imprecision of a process's start time as /proc
// gives it (clock ticks since boot, set against the uptime now).
const loadSlack = time.Second

// unloadedFiles says which file harden owns was written after the running
// proxy's newest worker process started ("" when none was, or when the
// proxy's processes cannot be read: no pid_file, another user's /proc).
func (t *target) unloadedFiles(q sdk.RequestContext) string {
	if t.conn.PIDFile == "" {
		return ""
	}
	files, err := t.files(q)
	if err != nil {
		return ""
	}
	master, err := readPID(t.conn.PIDFile)
	if err != nil {
		return ""
	}
	pid, started, ok := newestChild(master)
	if !ok {
		return ""
	}
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err != nil {
			continue
		}
		if fi.ModTime().After(started.Add(loadSlack)) {
			return fmt.Sprintf("%s was written at %s, after the running %s's newest worker process (pid %d) started at %s: the running proxy has not loaded it (a reload would; harden apply reloads)",
				f.path, fi.ModTime().Format(time.RFC3339), t.flavor.kind(), pid, started.Format(time.RFC3339))
		}
	}
	return ""
}

// newestChild is the most recently started child process of pid and when
// it started.
func newestChild(pid int) (int, time.Time, bool) {
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, time.Time{}, false
	}
	now := time.Now()
	f := strings.Fields(string(uptime))
	if len(f) == 0 {
		return 0, time.Time{}, false
	}
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	best, bestTicks := 0, int64(-1)
	for _, c := range childPIDs(pid) {
		ticks, ok := startTicks(c)
		if ok && ticks > bestTicks {
			best, bestTicks = c, ticks
		}
	}
	if bestTicks < 0 {
		return 0, time.Time{}, false
	}
	// /proc/<pid>/stat counts in USER_HZ, 100 on every Linux architecture
	// Go supports.
	ago := time.Duration((up - float64(bestTicks)/100) * float64(time.Second))
	return best, now.Add(-ago), true
}

// startTicks is field 22 of /proc/<pid>/stat: when the process started,
// in clock ticks since boot.
func startTicks(pid int) (int64, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	// After "pid (comm)": state is field 3, starttime field 22.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[19], 10, 64)
	return n, err == nil
}
