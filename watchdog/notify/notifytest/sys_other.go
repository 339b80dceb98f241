//go:build !linux

package notifytest

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

func processGone(int) bool { return false }
