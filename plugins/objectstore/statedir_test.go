package main

import (
	"os"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// TestMain keeps the apply journals of this package's tests in a
// directory of their own (never /var/lib/harden); a helper process the
// tests start inherits it.
func TestMain(m *testing.M) {
	if os.Getenv(applykit.StateDirEnv) == "" {
		dir, err := os.MkdirTemp("", "harden-state-")
		if err != nil {
			panic(err)
		}
		os.Setenv(applykit.StateDirEnv, dir)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}
