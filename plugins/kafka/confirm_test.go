package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// A cancelled apply stops waiting for the new certificate in the middle of
// a TLS handshake with a listener that never answers, not after the dial
// timeout (5 s) of each handshake.
func TestConfirmServedEndsWhenCancelled(t *testing.T) {
	addr := silentBroker(t)
	rd := rendered{broker: brokerTarget{Listeners: []listenerSpec{{Name: "SSL", Address: addr}}}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err := confirmServed(ctx, sdk.RequestContext{}, rd)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a cancelled confirmation took %s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "listener SSL at "+addr) {
		t.Fatalf("a cancelled confirmation: %v", err)
	}
}
