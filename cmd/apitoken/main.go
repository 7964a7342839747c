// Command apitoken manages the API tokens of an application from a shell:
// migrate a store, issue, list, show, update, regenerate, revoke, delete and
// prune tokens, with the policy and hash keys the application's servers use.
// Run "apitoken --help" for the commands, the store URLs and the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
