package sdktest

import (
	"os"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// MainWithStateDir is a plugin test package's TestMain: it keeps the apply
// journals of the package's tests in a directory of their own (never
// /var/lib/harden) and removes it afterwards; a helper process the tests
// start (RunHelperProcess) inherits it.
func MainWithStateDir(m *testing.M) {
	if os.Getenv(applykit.StateDirEnv) != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "harden-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv(applykit.StateDirEnv, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
