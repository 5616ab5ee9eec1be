package backends

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// CheckResult is one capability Check tried.
type CheckResult struct {
	Name     string // e.g. "put", "conditional create"
	Required bool   // the gateway cannot work without it
	OK       bool
	Detail   string // what was seen, or the error
}

// Check round-trips test objects under "walgate-check/<random>/" and
// reports what works: put, stat with metadata, get, range get, list,
// conditional create, a streamed upload of unknown size, each class in
// classes at write time and by SetClass, and delete. It removes what it
// wrote. It is for wiring a new bucket; it writes a few MiB.
func Check(ctx context.Context, b Backend, classes []string) []CheckResult {
	var out []CheckResult
	add := func(name string, required bool, err error, detail string) bool {
		r := CheckResult{Name: name, Required: required, OK: err == nil, Detail: detail}
		if err != nil {
			r.Detail = err.Error()
		}
		out = append(out, r)
		return err == nil
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "walgate-check/" + hex.EncodeToString(rnd[:]) + "/"
	var written []string
	defer func() {
		for _, k := range written {
			_ = b.Delete(context.WithoutCancel(ctx), k)
		}
	}()

	key := prefix + "object"
	data := []byte("walgate backend check: this object is removed at the end of the check\n")
	md := map[string]string{"cluster": "check", "kind": "check", "sha256": strings.Repeat("0", 64)}
	_, err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), PutOptions{Metadata: md})
	if !add("put", true, err, fmt.Sprintf("%d bytes with metadata", len(data))) {
		return out // nothing else can work
	}
	written = append(written, key)

	info, err := b.Stat(ctx, key)
	if err == nil && info.Size != int64(len(data)) {
		err = fmt.Errorf("size %d, want %d", info.Size, len(data))
	}
	add("stat", true, err, fmt.Sprintf("size %d, class %q", info.Size, info.Class))
	if err == nil {
		var merr error
		for k, v := range md {
			if info.Metadata[k] != v {
				merr = fmt.Errorf("metadata %q = %q, want %q (the catalog cannot be rebuilt from this backend)", k, info.Metadata[k], v)
			}
		}
		add("metadata", true, merr, fmt.Sprintf("%d keys kept", len(md)))
	}

	got, err := readAll(ctx, b, key, 0, -1)
	if err == nil && !bytes.Equal(got, data) {
		err = errors.New("content differs from what was written")
	}
	add("get", true, err, "content identical")

	got, err = readAll(ctx, b, key, 8, 7)
	if err == nil && !bytes.Equal(got, data[8:15]) {
		err = fmt.Errorf("range 8+7 = %q, want %q", got, data[8:15])
	}
	add("range get", true, err, "bytes 8-14")

	found := false
	err = b.List(ctx, prefix, func(o ObjectInfo) error {
		if o.Key == key {
			found = true
		}
		return nil
	})
	if err == nil && !found {
		err = errors.New("the object is not listed under its prefix")
	}
	add("list", true, err, "object listed under its prefix")

	_, err = b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), PutOptions{IfNotExists: true})
	switch {
	case errors.Is(err, ErrExists):
		add("conditional create", true, nil, "a second create of the same key is refused")
	case err == nil:
		add("conditional create", true, errors.New("a create with if-not-exists replaced an existing object"), "")
	default:
		add("conditional create", true, err, "")
	}

	big := prefix + "streamed"
	const bigSize = 6 << 20
	_, err = b.Put(ctx, big, io.LimitReader(zeros{}, bigSize), -1, PutOptions{})
	if err == nil {
		written = append(written, big)
		if info, serr := b.Stat(ctx, big); serr != nil {
			err = serr
		} else if info.Size != bigSize {
			err = fmt.Errorf("stored %d bytes, want %d", info.Size, bigSize)
		}
	}
	add("streamed upload", true, err, "6 MiB of unknown size")

	for _, class := range classes {
		ck := prefix + "class-" + class
		_, err := b.Put(ctx, ck, bytes.NewReader(data), int64(len(data)), PutOptions{Class: class})
		if err == nil {
			written = append(written, ck)
			err = wantClass(ctx, b, ck, class)
		}
		add("class at write: "+class, false, err, "reported by stat")
		if err := b.SetClass(ctx, key, class); err == nil {
			add("class change: "+class, false, wantClass(ctx, b, key, class), "reported by stat")
		} else {
			add("class change: "+class, false, err, "")
		}
	}

	err = b.Delete(ctx, key)
	if err == nil {
		if _, serr := b.Stat(ctx, key); !errors.Is(serr, ErrNotFound) {
			err = fmt.Errorf("the object is still there after delete (stat: %v)", serr)
		}
	}
	if add("delete", true, err, "gone after delete") {
		written = written[1:]
	}
	return out
}

func wantClass(ctx context.Context, b Backend, key, class string) error {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return err
	}
	if info.Class != class {
		return fmt.Errorf("stat reports class %q, want %q", info.Class, class)
	}
	return nil
}

func readAll(ctx context.Context, b Backend, key string, off, length int64) ([]byte, error) {
	rc, err := b.Get(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
