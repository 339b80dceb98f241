//go:build !linux

package keystoretest

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

func processGone(int) bool { return false }
