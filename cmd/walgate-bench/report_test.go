package main

import "testing"

// A figure beside a verdict never reads as the target itself when it is on
// the other side of it: two decimals unless those round onto or across
// the target.
func TestAgainstTarget(t *testing.T) {
	for _, c := range []struct {
		r, target float64
		want      string
	}{
		{0.7951, 0.8, "0.795"}, // "0.80" would read as meeting "at least 0.8"
		{0.8, 0.8, "0.80"},
		{0.8049, 0.8, "0.805"}, // "0.80" would read as meeting "at most 0.8"
		{0.83, 0.8, "0.83"},
		{1.0504, 1.05, "1.0504"}, // "1.05" and "1.050" would read as at most 1.05
		{1.0496, 1.05, "1.0496"},
		{1.43, 1.2, "1.43"},
		{0.35, 0.35, "0.35"},
		{1.99999, 2, "1.99999"},
	} {
		if got := againstTarget(c.r, c.target); got != c.want {
			t.Errorf("againstTarget(%v, %v) = %q, want %q", c.r, c.target, got, c.want)
		}
	}
}
