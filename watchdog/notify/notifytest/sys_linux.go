package notifytest

import (
	"errors"
	"syscall"
)

// childAttr kills dbus-daemon if the test binary dies without cleaning up
// (a panic, or go test's -timeout).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
