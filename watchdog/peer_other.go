//go:build !linux

package watchdog

import "net"

// samePeer trusts the socket's 0600 mode and the private data directory
// where the OS offers no portable peer credentials.
func samePeer(net.Conn) bool { return true }
