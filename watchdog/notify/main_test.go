package notify_test

import (
	"os"
	"testing"

	"github.com/keycap/keycap/watchdog/notify/notifytest"
)

// TestMain puts the tests on a private session bus before beeep connects.
func TestMain(m *testing.M) { os.Exit(notifytest.Main(m)) }
