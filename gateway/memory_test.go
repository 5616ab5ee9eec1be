package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// patternReader yields n deterministic pseudo-random bytes without holding
// them: the same seed gives the same stream.
type patternReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}

// heapPeak samples the live heap until stop is closed and reports the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak {
				peak = ms.HeapInuse
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestStreamingMemoryBounded pushes and fetches a 256 MiB object through a
// real in-process gateway and measures the heap meanwhile: memory per
// stream must stay bounded, independent of the object's size.
func TestStreamingMemoryBounded(t *testing.T) {
	const size = 256 << 20
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token("mem", "push", "fetch")
	h := sha256.New()
	io.Copy(h, newPattern(7, size))
	sum := hex.EncodeToString(h.Sum(nil))
	url := g.URL + protocol.WALPath("mem", "000000010000000000000001")

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peakc := heapPeak(stop)

	req, _ := http.NewRequest(http.MethodPut, url, newPattern(7, size))
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(protocol.HeaderContentSHA256, sum)
	req.Header.Set(protocol.HeaderCompression, "none")
	req.Header.Set(protocol.HeaderEncryption, "none")
	req.Header.Set(protocol.HeaderContentID, "sha256:"+sum)
	req.Header.Set(protocol.HeaderPlainSize, strconv.Itoa(size))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}

	get, _ := http.NewRequest(http.MethodGet, url, nil)
	get.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	gh := sha256.New()
	m, err := io.Copy(gh, resp.Body)
	resp.Body.Close()
	close(stop)
	peak := <-peakc
	if err != nil || m != size || hex.EncodeToString(gh.Sum(nil)) != sum {
		t.Fatalf("GET: %d bytes, err %v, hash match %v", m, err, hex.EncodeToString(gh.Sum(nil)) == sum)
	}
	growth := int64(peak) - int64(base.HeapInuse)
	t.Logf("256 MiB pushed and fetched; heap in use %.1f MiB before, peak %.1f MiB (growth %.1f MiB)",
		float64(base.HeapInuse)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	if growth > 24<<20 {
		t.Fatalf("heap grew by %.1f MiB while streaming 256 MiB: a body is being buffered", float64(growth)/(1<<20))
	}
}
