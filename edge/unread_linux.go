package edge

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unread reports whether the kernel holds bytes of this connection that
// nobody has read yet (or cannot tell).
func (c *trackedConn) unread() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return true
	}
	return n > 0
}
