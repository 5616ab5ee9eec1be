package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	raw32 := "0123456789abcdef0123456789abcdef"
	hexKey := "ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d"
	hexBytes, _ := hex.DecodeString(hexKey)
	cases := []struct {
		value, transform string
		want             []byte // nil: an error
	}{
		{raw32, "", []byte(raw32)},
		{raw32, "none", []byte(raw32)},
		{"walgate-vector-raw-passphrase-0123456789", "none", []byte("walgate-vector-raw-passphrase-01")},
		{strings.Repeat("k", 25), "none", append([]byte(strings.Repeat("k", 25)), make([]byte, 7)...)},
		{strings.Repeat("k", 24), "none", nil},
		{"", "none", nil},
		{"ünïcödé-passphrase-xy", "none", append([]byte("ünïcödé-passphrase-xy"), make([]byte, 32-len("ünïcödé-passphrase-xy"))...)}, // 25 bytes, 21 runes
		{hexKey, "hex", hexBytes},
		{strings.ToUpper(hexKey), "hex", hexBytes},
		{hexKey[:62], "hex", nil},
		{hexKey + "00", "hex", nil},
		{"g" + hexKey[1:], "hex", nil},
		{base64.StdEncoding.EncodeToString(hexBytes), "base64", hexBytes},
		{base64.RawStdEncoding.EncodeToString(hexBytes), "base64", nil}, // padding required
		{base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "base64", nil},
		{base64.StdEncoding.EncodeToString(hexBytes[:31]), "base64", nil},
		{hexKey, "HEX", nil},
		{hexKey, "base32", nil},
	}
	for _, tc := range cases {
		key, err := ParseKey(tc.value, tc.transform)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseKey(%q, %q) accepted", tc.value, tc.transform)
				continue
			}
			// The error must not leak the key or any long piece of it.
			for i := 0; i+6 <= len(tc.value); i++ {
				if strings.Contains(err.Error(), tc.value[i:i+6]) {
					t.Errorf("ParseKey(%q, %q) error %q quotes the key", tc.value, tc.transform, err)
					break
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseKey(%q, %q): %v", tc.value, tc.transform, err)
			continue
		}
		if !bytes.Equal(key[:], tc.want) {
			t.Errorf("ParseKey(%q, %q) = %x, want %x", tc.value, tc.transform, key[:], tc.want)
		}
	}
	// A bad hex character must not be quoted either.
	_, err := ParseKey("z"+hexKey[1:], "hex")
	if err == nil || strings.Contains(err.Error(), "'z'") {
		t.Errorf("hex error %v", err)
	}
}

func TestKeyRedacts(t *testing.T) {
	key, _ := ParseKey("ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d", "hex")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, v := range []any{key, *key} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToLower(out), "ebb339") || strings.Contains(out, "235") {
				t.Errorf("Sprintf(%s) of a key shows key material: %s", verb, out)
			}
		}
	}
	type config struct{ Key *Key }
	if out := fmt.Sprintf("%+v", config{key}); strings.Contains(out, "ebb3") {
		t.Errorf("key inside a struct printed as %s", out)
	}
}
