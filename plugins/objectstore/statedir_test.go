package main

import (
	"testing"

	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

// TestMain keeps this package's apply journals in a temporary state
// directory.
func TestMain(m *testing.M) { sdktest.MainWithStateDir(m) }
