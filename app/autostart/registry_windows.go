package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

func registryEnabled() (bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if err != nil {
		return false, fmt.Errorf("check start at login: %w", err)
	}
	defer k.Close()
	_, _, err = k.GetStringValue(Name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, registry.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("check start at login: %w", err)
}

func registryEnable(cmd string) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("turn on start at login: %w", err)
	}
	defer k.Close()
	if err := k.SetStringValue(Name, cmd); err != nil {
		return fmt.Errorf("turn on start at login: %w", err)
	}
	return nil
}

func registryDisable() error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("turn off start at login: %w", err)
	}
	defer k.Close()
	if err := k.DeleteValue(Name); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf("turn off start at login: %w", err)
	}
	return nil
}
