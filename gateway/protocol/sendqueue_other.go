//go:build !linux

package protocol

import "net"

// SendQueue cannot be known here (-1): a stalled send is seen when a
// write blocks, and the wait for an answer counts from the last write.
func SendQueue(net.Conn) int { return -1 }
