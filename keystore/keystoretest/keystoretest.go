// Package keystoretest runs a real, private Secret Service for tests of code
// that uses the OS keychain: a D-Bus session bus of its own (dbus-daemon) with
// gnome-keyring-daemon on it, its files in a temporary directory, so the
// user's own keychain is never touched.
//
// godbus shares one session bus connection per process and go-keyring uses
// it, so the service must be started before anything touches the bus: call
// [Main] from TestMain and [Require] from the tests that need it.
//
// When dbus-daemon or gnome-keyring-daemon is not installed the tests are
// skipped, with a message to run `make test`, which installs them; when the
// CI environment variable is set they fail instead.
package keystoretest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Password unlocks the private login keyring.
const Password = "keycap-test"

// ErrNotInstalled is returned by [Start] and [StartBus] when dbus-daemon or
// gnome-keyring-daemon cannot be found.
var ErrNotInstalled = errors.New("dbus-daemon and gnome-keyring-daemon are needed for the tests against a real keychain: run `make test`, which installs them (apt-get install dbus gnome-keyring)")

const (
	secretsName     = "org.freedesktop.secrets"
	secretsPath     = dbus.ObjectPath("/org/freedesktop/secrets")
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	tempPrefix      = "keycap-secrets-"
	startTimeout    = 15 * time.Second
	stopTimeout     = 5 * time.Second
)

// Bus is a private D-Bus session bus. Nothing is started on it by
// activation: its configuration names no service directories.
type Bus struct {
	// Address is the bus address, for DBUS_SESSION_BUS_ADDRESS.
	Address string
	cmd     *exec.Cmd
	exited  chan struct{}
	stderr  *syncBuffer
}

// StartBus starts dbus-daemon with its socket in dir.
func StartBus(dir string) (*Bus, error) {
	exe, err := exec.LookPath("dbus-daemon")
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	config := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(config, []byte(busConfig(filepath.Join(dir, "bus"))), 0o600); err != nil {
		return nil, fmt.Errorf("write bus config: %w", err)
	}
	b := &Bus{stderr: new(syncBuffer), exited: make(chan struct{})}
	b.cmd = exec.Command(exe, "--config-file="+config, "--nofork", "--print-address")
	b.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	b.cmd.Stderr = b.stderr
	b.cmd.SysProcAttr = childAttr()
	b.cmd.WaitDelay = stopTimeout
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start dbus-daemon: %w", err)
	}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dbus-daemon: %w", err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()

	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case b.Address = <-addr:
	case <-time.After(startTimeout):
	}
	if b.Address == "" {
		b.Close()
		return nil, fmt.Errorf("dbus-daemon printed no address: %s", strings.TrimSpace(b.stderr.String()))
	}
	return b, nil
}

// Close stops the bus.
func (b *Bus) Close() {
	stop(b.cmd, b.exited)
}

func busConfig(socket string) string {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte("unix:path="+socket))
	return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>` + esc.String() + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
}

// SecretService is a private gnome-keyring-daemon on a private bus, with an
// unlocked login keyring whose password is [Password].
type SecretService struct {
	// Address is the address of its session bus.
	Address string
	// Dir is the temporary directory standing in for HOME and the XDG
	// directories.
	Dir string

	bus     *Bus
	keyring *exec.Cmd
	exited  chan struct{}
	stderr  *syncBuffer
	restore func()
}

// Start starts a private Secret Service and points this process at it:
// DBUS_SESSION_BUS_ADDRESS, HOME and the XDG directories are set until
// Close. It returns an error matching ErrNotInstalled when the programs are
// missing.
func Start() (_ *SecretService, err error) {
	for _, name := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(name); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
		}
	}
	removeStale()
	// Short, so the socket paths stay under the 108-byte limit.
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	s := &SecretService{Dir: dir, stderr: new(syncBuffer), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}

	env := map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "cache"),
		"XDG_RUNTIME_DIR": filepath.Join(dir, "run"),
	}
	for _, d := range env {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if s.bus, err = StartBus(dir); err != nil {
		return nil, err
	}
	s.Address = s.bus.Address
	env["DBUS_SESSION_BUS_ADDRESS"] = s.Address

	s.keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	s.keyring.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for k, v := range env {
		s.keyring.Env = append(s.keyring.Env, k+"="+v)
	}
	// --unlock reads the login keyring's password from stdin until EOF, and
	// creates the keyring with it the first time.
	s.keyring.Stdin = strings.NewReader(Password)
	s.keyring.Stdout = s.stderr
	s.keyring.Stderr = s.stderr
	s.keyring.SysProcAttr = childAttr()
	s.keyring.WaitDelay = stopTimeout
	if err := s.keyring.Start(); err != nil {
		return nil, fmt.Errorf("start gnome-keyring-daemon: %w", err)
	}
	go func() {
		_ = s.keyring.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		return nil, err
	}

	s.restore = setenv(env)
	return s, nil
}

// removeStale removes the directories of test binaries that died without
// cleaning up (a panic, or go test's -timeout); Pdeathsig has already
// stopped their daemons.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(string(b)); err == nil && processGone(pid) {
			_ = os.RemoveAll(dir)
		}
	}
}

// waitReady polls the bus until the login collection is on it.
func (s *SecretService) waitReady() error {
	conn, err := dbus.Connect(s.Address)
	if err != nil {
		return fmt.Errorf("connect to the test bus: %w", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		var collections []dbus.ObjectPath
		err := conn.Object(secretsName, secretsPath).Call("org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.Secret.Service", "Collections").Store(&collections)
		if err == nil && slices.Contains(collections, loginCollection) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("gnome-keyring-daemon exited: %v: %s", s.keyring.ProcessState, strings.TrimSpace(s.stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gnome-keyring-daemon did not offer %s within %v (last error: %v): %s", secretsName, startTimeout, err, strings.TrimSpace(s.stderr.String()))
		}
	}
}

// Close stops gnome-keyring-daemon and the bus, restores the environment
// and removes the temporary directory.
func (s *SecretService) Close() {
	if s.restore != nil {
		s.restore()
		s.restore = nil
	}
	if s.keyring != nil && s.keyring.Process != nil {
		stop(s.keyring, s.exited)
	}
	if s.bus != nil {
		s.bus.Close()
	}
	_ = os.RemoveAll(s.Dir)
}

// Lock locks the login keyring, as the screen locker or a timeout would.
func (s *SecretService) Lock() error {
	return s.call(func(conn *dbus.Conn) error {
		var locked []dbus.ObjectPath
		var prompt dbus.ObjectPath
		return conn.Object(secretsName, secretsPath).Call("org.freedesktop.Secret.Service.Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	})
}

// Unlock unlocks the login keyring with [Password], without a prompt.
func (s *SecretService) Unlock() error {
	return s.call(func(conn *dbus.Conn) error {
		service := conn.Object(secretsName, secretsPath)
		var output dbus.Variant
		var session dbus.ObjectPath
		if err := service.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&output, &session); err != nil {
			return err
		}
		secret := struct {
			Session     dbus.ObjectPath
			Parameters  []byte
			Value       []byte
			ContentType string
		}{session, []byte{}, []byte(Password), "text/plain"}
		// gnome-keyring's own interface for unlocking with a password.
		return service.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollection, secret).Err
	})
}

// Lookup reads a secret by its attributes straight from the Secret Service,
// as secret-tool would, bypassing the code under test.
func (s *SecretService) Lookup(attrs map[string]string) (secret string, found bool, err error) {
	err = s.call(func(conn *dbus.Conn) error {
		service := conn.Object(secretsName, secretsPath)
		var unlocked, locked []dbus.ObjectPath
		if err := service.Call("org.freedesktop.Secret.Service.SearchItems", 0, attrs).Store(&unlocked, &locked); err != nil {
			return err
		}
		if len(unlocked) == 0 {
			return nil
		}
		var output dbus.Variant
		var session dbus.ObjectPath
		if err := service.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&output, &session); err != nil {
			return err
		}
		var value struct {
			Session     dbus.ObjectPath
			Parameters  []byte
			Value       []byte
			ContentType string
		}
		if err := conn.Object(secretsName, unlocked[0]).Call("org.freedesktop.Secret.Item.GetSecret", 0, session).Store(&value); err != nil {
			return err
		}
		secret, found = string(value.Value), true
		return nil
	})
	return secret, found, err
}

// call runs f on a private connection to the bus.
func (s *SecretService) call(f func(*dbus.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := dbus.Connect(s.Address, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("connect to the test bus: %w", err)
	}
	defer conn.Close()
	return f(conn)
}

var (
	mainService *SecretService
	mainErr     error
	mainCalled  bool
)

// Main starts a private Secret Service, runs the tests and stops it. Call it
// from TestMain, before anything touches the session bus:
//
//	func TestMain(m *testing.M) { os.Exit(keystoretest.Main(m)) }
//
// If the programs are missing, the tests calling [Require] are skipped, or
// the whole run fails when CI is set; any other failure to start fails the
// run.
func Main(m *testing.M) int {
	mainCalled = true
	s, err := Start()
	switch {
	case err == nil:
		mainService = s
		defer s.Close()
	case errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "":
		mainErr = err
	default:
		fmt.Fprintf(os.Stderr, "keystoretest: %v\n", err)
		return 1
	}
	return m.Run()
}

// Require returns the Secret Service [Main] started, and skips the test
// when Main found the programs missing.
func Require(tb testing.TB) *SecretService {
	tb.Helper()
	if !mainCalled {
		tb.Fatal("keystoretest.Require needs keystoretest.Main to be called from TestMain")
	}
	if mainErr != nil {
		tb.Skip(mainErr)
	}
	return mainService
}

// StartSecretService starts a private Secret Service for one test and stops
// it when the test ends. Because the session bus connection is shared by the
// whole process, use it only in a test binary where nothing touched the bus
// before; otherwise use [Main] and [Require]. It skips the test when the
// programs are missing, or fails it when CI is set.
func StartSecretService(tb testing.TB) *SecretService {
	tb.Helper()
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// MustStartBus starts a private session bus with nothing on it, for tests of
// what happens without a Secret Service, and stops it when the test ends.
// It skips or fails like [StartSecretService].
func MustStartBus(tb testing.TB) *Bus {
	tb.Helper()
	b, err := StartBus(tb.TempDir())
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

func setenv(env map[string]string) (restore func()) {
	type old struct {
		value string
		set   bool
	}
	saved := make(map[string]old, len(env))
	for k, v := range env {
		value, set := os.LookupEnv(k)
		saved[k] = old{value, set}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.value)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// syncBuffer collects a child's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stop ends a child: SIGTERM, then SIGKILL if it lingers.
func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}
