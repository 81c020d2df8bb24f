package main

import (
	"slices"
	"testing"
	"time"
)

// The expiry check's window is the policy's renew_before: 30-day
// certificates renewed 10 days ahead are not "close to expiry" at issue
// (the pipeline example; it read < 30 days before).
func TestExpiryWindowsFollowRenewBefore(t *testing.T) {
	d := 24 * time.Hour
	for rb, want := range map[time.Duration][]time.Duration{
		0:      {7 * d, 14 * d, 30 * d},
		10 * d: {7 * d, 10 * d},
		5 * d:  {5 * d},
		45 * d: {7 * d, 14 * d, 45 * d},
	} {
		if got := expiryWindows(rb); !slices.Equal(got, want) {
			t.Errorf("renew_before %s: %v, want %v", rb, got, want)
		}
	}
	if days(10*d) != "10 days" || days(36*time.Hour) != "36h0m0s" {
		t.Errorf("days: %q %q", days(10*d), days(36*time.Hour))
	}
}
