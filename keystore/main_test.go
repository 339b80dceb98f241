package keystore_test

import (
	"os"
	"testing"

	"github.com/keycap/keycap/keystore/keystoretest"
)

// childEnv marks a re-run of this test binary by TestNoSecretService: the
// child talks to whatever bus DBUS_SESSION_BUS_ADDRESS names, with no
// private Secret Service started.
const childEnv = "KEYSTORE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run())
	}
	os.Exit(keystoretest.Main(m))
}
