//go:build !windows

package autostart

import "errors"

var errNoRegistry = errors.New("the Windows registry is only on Windows")

func registryEnabled() (bool, error) { return false, errNoRegistry }
func registryEnable(string) error    { return errNoRegistry }
func registryDisable() error         { return errNoRegistry }
