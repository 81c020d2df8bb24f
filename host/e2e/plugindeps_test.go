package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenInPlugins are host-side packages a plugin binary must never
// link: hostclient launches and attaches to plugins (a plugin linking it
// carries the host's trust decisions and go-plugin's client), and bufconn is
// the in-memory listener of the in-process test path.
var forbiddenInPlugins = []string{
	"github.com/harden-dev/harden/shared/sdk/hostclient",
	"google.golang.org/grpc/test/bufconn",
}

// The shipped plugins' binaries link the SDK but nothing of the host side:
// `go list -deps` of each main package (tests excluded, as in the binary)
// must not name a forbidden package.
func TestPluginBinariesDoNotLinkHostClient(t *testing.T) {
	for _, c := range []struct{ dir, pkg string }{
		{"../..", "./plugins/postgres"},
		{"../..", "./plugins/kafka"},
		{"../..", "./plugins/objectstore"},
		{"../..", "./plugins/vaultpki"},
		// redis is a module of its own, as a third-party plugin would be.
		{"../../plugins/redis", "."},
	} {
		t.Run(c.pkg, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", c.pkg)
			cmd.Dir = c.dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s in %s: %v", c.pkg, c.dir, err)
			}
			deps := strings.Fields(string(out))
			// Not vacuous: the list is the binary's, which serves the SDK.
			if !slices.Contains(deps, "github.com/harden-dev/harden/shared/sdk") {
				t.Fatalf("go list -deps %s does not list the SDK: %d packages", c.pkg, len(deps))
			}
			for _, f := range forbiddenInPlugins {
				if slices.Contains(deps, f) {
					t.Errorf("plugin %s links %s", c.pkg, f)
				}
			}
		})
	}
}
