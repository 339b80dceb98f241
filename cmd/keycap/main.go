// Command keycap is a budget watchdog for the OpenAI API: it keeps the key in
// the system keychain, hands scripts short-lived tokens, meters every request
// through a loopback proxy and stops spending at a hard daily cap.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
