package codec

import (
	"strings"
	"testing"
)

// TestParseKeyHexLengthError: a hex key that is no hex at all (an odd
// number of digits, a character that is no hex digit) is refused with the
// number of digits a 32-byte key takes, so that the user can see what to
// fix.
func TestParseKeyHexLengthError(t *testing.T) {
	for _, value := range []string{"012", strings.Repeat("ab", 31) + "a", strings.Repeat("zz", 32)} {
		_, err := ParseKey(value, "hex")
		if err == nil {
			t.Fatalf("hex key of %d characters accepted", len(value))
		}
		if !strings.Contains(err.Error(), "64 hex digits") {
			t.Errorf("hex key of %d characters: %q does not say that 64 hex digits are expected", len(value), err)
		}
	}
}
