//go:build linux || freebsd || netbsd || openbsd || illumos

package notify

import (
	"context"
	"fmt"
	"slices"

	"github.com/godbus/dbus/v5"
)

// serviceName is the D-Bus name of the desktop notification service.
const serviceName = "org.freedesktop.Notifications"

// Probe checks that org.freedesktop.Notifications has an owner on the
// session bus, or can be started there by D-Bus activation. It uses a
// connection of its own, closed before it returns, and never launches a
// session bus (no dbus-launch). Its errors match ErrUnavailable.
func Probe(ctx context.Context) error {
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: no D-Bus session bus (%v)", ErrUnavailable, err)
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrUnavailable, err)
	}
	if err := conn.Hello(); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrUnavailable, err)
	}
	bus := conn.BusObject()
	var owned bool
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, serviceName).Store(&owned); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrUnavailable, err)
	}
	if owned {
		return nil
	}
	var activatable []string
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrUnavailable, err)
	}
	if slices.Contains(activatable, serviceName) {
		return nil
	}
	return fmt.Errorf("%w: nothing owns %s on the session bus", ErrUnavailable, serviceName)
}
