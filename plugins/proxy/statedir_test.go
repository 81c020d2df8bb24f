package main

import (
	"testing"

	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

// The package's apply journals live in a directory of their own.
func TestMain(m *testing.M) { sdktest.MainWithStateDir(m) }
