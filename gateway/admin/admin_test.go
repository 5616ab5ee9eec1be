package admin

import (
	"context"
	"os"
	"testing"
	"time"
)

// A gateway that stops removes its admin socket before Serve returns, and
// nothing of it removes the socket of the gateway started next on the
// same data directory (as a restart in one process does): the new socket
// stays, and answers.
func TestServeLeavesTheNextSocket(t *testing.T) {
	data := t.TempDir()
	path := SocketPath(data)
	for round := range 30 {
		ln, err := Listen(data)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- (&Server{Data: data}).Serve(ctx, ln) }()
		if _, err := Dial(data); err != nil {
			t.Fatalf("round %d: the running gateway's socket: %v", round, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Serve: %v", round, err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("round %d: the socket is still there after Serve returned (%v)", round, err)
		}
		next, err := Listen(data)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // time for anything left of the last one to run
		_, serr := os.Lstat(path)
		next.Close()
		if serr != nil {
			t.Fatalf("round %d: the next gateway's socket was removed: %v", round, serr)
		}
	}
}
