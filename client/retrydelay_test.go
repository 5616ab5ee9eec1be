package client

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A retry waits half a second more each time; an answer's Retry-After,
// when longer, sets the wait, spread by up to half again; a malformed or
// absent header changes nothing, and one above a minute is held to it.
func TestRetryDelay(t *testing.T) {
	plain := &Error{Kind: ErrUnavailable}
	for attempt, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 1500 * time.Millisecond} {
		if got := retryDelay(attempt, plain); got != want {
			t.Errorf("attempt %d without Retry-After: %v, want %v", attempt, got, want)
		}
	}
	if got := retryDelay(1, errors.New("not an *Error")); got != 500*time.Millisecond {
		t.Errorf("a foreign error: %v", got)
	}
	saturated := fmt.Errorf("wrapped: %w", &Error{Kind: ErrUnavailable, retryAfter: 4 * time.Second})
	seen := map[time.Duration]bool{}
	for range 200 {
		d := retryDelay(1, saturated)
		if d < 4*time.Second || d > 6*time.Second {
			t.Fatalf("Retry-After 4s: waited %v, want 4s to 6s", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("Retry-After 4s: only %d distinct waits in 200: the clients would return together", len(seen))
	}
	if d := retryDelay(10, saturated); d < 5*time.Second {
		t.Fatalf("attempt 10 with Retry-After 4s: %v, want at least the backoff of 5s", d)
	}
	for v, want := range map[string]time.Duration{"": 0, "x": 0, "-3": 0, "0": 0, "1": time.Second, " 7 ": 7 * time.Second, "3600": time.Minute,
		"Wed, 21 Oct 2026 07:28:00 GMT": 0} {
		if got := parseRetryAfter(v); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}
