package backends_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends"
)

func TestValidateKey(t *testing.T) {
	valid := []string{
		"a",
		"cluster/wal_005/000000010000000000000001",
		"with space/and ünïcödé/日本語",
		"...", "a/.../b", ".hidden", "trailing.",
		"url !$&'()*+,;=:@#?[]%",
		strings.Repeat("k", backends.MaxKeyLen),
		strings.Repeat("d/", 511) + "k", // 1023 bytes of nesting
	}
	for _, key := range valid {
		if err := backends.ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}
	invalid := []string{
		"",
		"/leading",
		"trailing/",
		"double//slash",
		"/",
		".",
		"..",
		"a/./b",
		"a/../b",
		"../escape",
		"back\\slash",
		"nul\x00",
		"tab\t",
		"new\nline",
		"del\x7f",
		"bad utf-8 \xff",
		strings.Repeat("k", backends.MaxKeyLen+1),
	}
	for _, key := range invalid {
		err := backends.ValidateKey(key)
		if !errors.Is(err, backends.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	// The message stays short for a huge key.
	if err := backends.ValidateKey(strings.Repeat("k", 5000)); len(err.Error()) > 200 {
		t.Errorf("error for a 5000-byte key is %d bytes long", len(err.Error()))
	}
}
