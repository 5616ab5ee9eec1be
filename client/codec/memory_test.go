package codec

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// memoryBudget is what one open writer plus one open reader of an encrypted
// stream may keep live (after a garbage collection), per method, whatever
// the object size. docs/codec.md lists the measured figures.
var memoryBudget = map[Compression]uint64{
	Zstd:   32 << 20, // measured about 27 MiB: encoder 8 MiB window about 18, decoder about 9
	LZ4:    24 << 20, // measured about 17 MiB: 4 MiB blocks, two buffers each side
	Brotli: 24 << 20, // measured about 14 MiB
	None:   2 << 20,  // measured about 0.5 MiB: one sealed and one plain chunk each side
}

// TestMemoryBounded encodes 64 MiB of pseudo-WAL, streams it through an
// io.Pipe into a reader and checks that the heap the two stages hold stays
// bounded: memory does not grow with the object.
func TestMemoryBounded(t *testing.T) {
	const size = 64 << 20
	for _, c := range allCompressions {
		t.Run(string(c), func(t *testing.T) {
			m := measureStream(t, c, testKey(30), size)
			t.Logf("%s+key, %d MiB: live mid-stream %.1f MiB (writer+reader), peak heap in use %.1f MiB above baseline, allocated %.2f bytes per byte",
				c, size>>20, mib(m.live), mib(m.peak), float64(m.allocated)/size)
			if m.live > memoryBudget[c] {
				t.Errorf("%s: %.1f MiB live mid-stream, budget %.1f MiB", c, mib(m.live), mib(memoryBudget[c]))
			}
			if m.peak > 2*memoryBudget[c]+8<<20 {
				t.Errorf("%s: heap in use peaked %.1f MiB above baseline", c, mib(m.peak))
			}
		})
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

type streamMemory struct {
	live      uint64 // heap held mid-stream, after a GC
	peak      uint64 // highest heap in use seen while streaming
	allocated uint64 // total bytes allocated
}

// measureStream pushes size bytes through NewWriter, an io.Pipe and
// NewReader, and measures the heap.
func measureStream(t *testing.T, c Compression, key *Key, size int64) streamMemory {
	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseline := heapInUse()

	// Sample the heap in use every millisecond without stopping the world.
	var peak uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapInUse(); h > baseline && h-baseline > peak {
				peak = h - baseline
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	pr, pw := io.Pipe()
	source := newPseudoWAL(77, size)
	wantSum := sha256.New()
	var writeErr error
	var writer sync.WaitGroup
	writer.Go(func() {
		w, err := NewWriter(pw, c, key)
		if err != nil {
			writeErr = err
			pw.CloseWithError(err)
			return
		}
		buf := make([]byte, 256<<10)
		if _, err := io.CopyBuffer(io.MultiWriter(w, wantSum), io.LimitReader(source, size), buf); err != nil {
			writeErr = err
		} else {
			writeErr = w.Close()
		}
		pw.CloseWithError(writeErr)
	})

	r, err := NewReader(pr, c, key)
	if err != nil {
		t.Fatal(err)
	}
	gotSum := sha256.New()
	var live uint64
	buf := make([]byte, 256<<10)
	var read int64
	for {
		n, err := r.Read(buf)
		gotSum.Write(buf[:n])
		read += int64(n)
		if live == 0 && read >= size/2 {
			// Mid-stream, with the writer blocked on the pipe: what do
			// both stages hold?
			runtime.GC()
			var mid runtime.MemStats
			runtime.ReadMemStats(&mid)
			live = mid.HeapAlloc - min(mid.HeapAlloc, before.HeapAlloc)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	r.Close()
	writer.Wait()
	close(stop)
	sampler.Wait()
	if writeErr != nil {
		t.Fatalf("write: %v", writeErr)
	}
	if read != size || fmt.Sprintf("%x", gotSum.Sum(nil)) != fmt.Sprintf("%x", wantSum.Sum(nil)) {
		t.Fatalf("round trip through the pipe changed the data (%d bytes)", read)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return streamMemory{live: live, peak: peak, allocated: after.TotalAlloc - before.TotalAlloc}
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapInUse is the heap occupied by objects, live or not yet swept.
func heapInUse() uint64 {
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}

// TestMemoryPerStage measures a writer alone and a reader alone, each
// mid-way through a 64 MiB object, and reports what one client process
// (which only pushes or only fetches) holds.
func TestMemoryPerStage(t *testing.T) {
	const size = 64 << 20
	key := testKey(31)
	for _, c := range allCompressions {
		writer := liveDuring(func(mid func()) {
			w, err := NewWriter(&countingWriter{}, c, key)
			if err != nil {
				t.Fatal(err)
			}
			src := newPseudoWAL(78, size)
			buf := make([]byte, 256<<10)
			for written := 0; written < size; written += len(buf) {
				io.ReadFull(src, buf)
				w.Write(buf)
				if written == size/2 {
					mid()
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
		var object bytes.Buffer
		w, _ := NewWriter(&object, c, key)
		io.Copy(w, newPseudoWAL(78, size))
		w.Close()
		reader := liveDuring(func(mid func()) {
			r, _ := NewReader(bytes.NewReader(object.Bytes()), c, key)
			buf := make([]byte, 256<<10)
			for read := 0; ; read += len(buf) {
				if _, err := io.ReadFull(r, buf); err != nil {
					break
				}
				if read == size/2 {
					mid()
				}
			}
			r.Close()
		})
		t.Logf("%s+key: writer %.1f MiB, reader %.1f MiB live mid-stream (object %d bytes, ratio %.2f)",
			c, mib(writer), mib(reader), object.Len(), float64(size)/float64(object.Len()))
		if writer+reader > memoryBudget[c] {
			t.Errorf("%s: writer %.1f MiB + reader %.1f MiB over the budget of %.1f MiB", c, mib(writer), mib(reader), mib(memoryBudget[c]))
		}
	}
}

// liveDuring runs f, which calls mid once while its streams are open, and
// returns how much more heap was live at that moment than before f.
func liveDuring(f func(mid func())) uint64 {
	runtime.GC()
	runtime.GC() // and once more to empty the sync.Pools the compressors use
	var before, at runtime.MemStats
	runtime.ReadMemStats(&before)
	var live uint64
	f(func() {
		runtime.GC()
		runtime.ReadMemStats(&at)
		live = at.HeapAlloc - min(at.HeapAlloc, before.HeapAlloc)
	})
	return live
}

// segmentAllocBudget is what encoding one 16 MiB WAL segment with zstd and
// a key (NewSegmentWriter, as wal-push does) may allocate in all. An
// exec'd wal-push runs without garbage collection, so every byte
// allocated is fresh memory the process touches: measured about 2.4 MiB
// (256 KiB window with one block of history, the match tables, block
// buffers); NewWriter's 1 MiB window makes it 3.1 MiB, a history of twice
// that window 4.0 MiB.
const segmentAllocBudget = 2<<20 + 768<<10

// TestSegmentEncodeAllocations bounds the memory a wal-push's encoder
// allocates for one segment: its window, tables and buffers, not the
// segment's size.
func TestSegmentEncodeAllocations(t *testing.T) {
	const size = 16 << 20
	src := pseudoWALBytes(79, size)
	key := testKey(32)
	var out countingWriter
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w, err := NewSegmentWriter(&out, Zstd, key, LevelDefault)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += 256 << 10 {
		if _, err := w.Write(src[off : off+256<<10]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("zstd+key, one 16 MiB segment: %.2f MiB allocated, %d bytes out", mib(alloc), out.n)
	if alloc > segmentAllocBudget {
		t.Errorf("encoding one segment allocated %.2f MiB, budget %.2f MiB", mib(alloc), mib(segmentAllocBudget))
	}
}
