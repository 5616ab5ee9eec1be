package codec

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
)

func TestHashReader(t *testing.T) {
	body := strings.Repeat("walgate ", 10000)
	hr := NewHashReader(strings.NewReader(body))
	if hr.Size() != 0 || hr.SHA256() != hex.EncodeToString(sha256.New().Sum(nil)) {
		t.Errorf("before reading: %d bytes, %s", hr.Size(), hr.SHA256())
	}
	got, err := io.ReadAll(io.LimitReader(hr, 1000))
	if err != nil || string(got) != body[:1000] {
		t.Fatalf("read %q, %v", got[:min(len(got), 20)], err)
	}
	sum := sha256.Sum256([]byte(body[:1000]))
	if hr.Size() != 1000 || hr.SHA256() != hex.EncodeToString(sum[:]) {
		t.Errorf("after 1000 bytes: %d bytes, %s", hr.Size(), hr.SHA256())
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256([]byte(body))
	if hr.Size() != int64(len(body)) || hr.SHA256() != hex.EncodeToString(sum[:]) {
		t.Errorf("at the end: %d bytes, %s; want %d, %x", hr.Size(), hr.SHA256(), len(body), sum)
	}
}
