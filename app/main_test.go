package app

import (
	"os"
	"testing"
)

// childEnv, when set, makes this test binary run the real desktop app
// instead of the tests: the tray test starts it that way under Xvfb and a
// private session bus, and plays the desktop's tray host to it. The value
// is the data directory.
const childEnv = "KEYCAP_APP_TEST_CHILD"

// runChild runs the real app; it is set where the real driver is built in
// (tray_dbus_test.go).
var runChild func(home string) int

func TestMain(m *testing.M) {
	if home := os.Getenv(childEnv); home != "" && runChild != nil {
		os.Exit(runChild(home))
	}
	os.Exit(m.Run())
}
