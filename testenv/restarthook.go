package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
)

// serveRestarts is a server's restart hook, the operator's restart command
// of the generated policy: on a loopback port it answers each "restart"
// line by calling restart, then "ok", or "error: ..." with restart's error
// on one line. It runs until ln is closed.
func serveRestarts(restart func(context.Context) error) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || strings.TrimSpace(line) != "restart" {
					fmt.Fprintln(c, "error: expected \"restart\"")
					return
				}
				if err := restart(context.Background()); err != nil {
					fmt.Fprintln(c, "error:", strings.ReplaceAll(err.Error(), "\n", " | "))
					return
				}
				fmt.Fprintln(c, "ok")
			}()
		}
	}()
	return ln, nil
}

// restartCommand is the argv that asks the hook on ln for a restart and
// succeeds once it answers "ok".
func restartCommand(ln net.Listener) []string {
	port := ln.Addr().(*net.TCPAddr).Port
	return []string{"/bin/bash", "-c", fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && echo restart >&3 && IFS= read -r line <&3; echo "$line"; [ "$line" = ok ]`, port)}
}
