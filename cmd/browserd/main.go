// Command browserd is a self-hostable server that speaks the Browserbase v1 API.
//
//	browserd serve            run the server (internal/server)
//	browserd admin …          manage projects and API keys in the local database
//	browserd bench            measure against bare Chromium (internal/bench)
//	browserd sessions|…       client commands (internal/cli)
//	browserd version          print the version
//
// main only dispatches: the server's wiring is internal/server, the bench internal/bench.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/browserd/browserd/internal/bench"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/cli"
	"github.com/browserd/browserd/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…"; the subcommands get it
// as an argument.
var version = "dev"

const usage = `browserd — a self-hosted server for the Browserbase v1 API

Usage:
  browserd serve [flags]                 run the server (browserd serve -h for flags)
  browserd admin projects create|list    manage projects in the local database
  browserd admin keys create|list        manage API keys in the local database
  browserd admin migrate-blobs --from DATA-DIR --to s3://…  copy the blobs of a data dir to S3
  browserd admin nodes list|drain        the members of a cluster (PostgreSQL --database)
  browserd bench [--quick]               measure against bare Chromium; writes docs/PERFORMANCE.md
  browserd sessions|contexts|extensions|projects …  client commands (browserd sessions help)
  browserd version                       print the version
`

func main() {
	chrome.SandboxInit() // when started as a browser sandbox's init, runs it and exits
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes a subcommand and returns the process exit code: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = server.Serve(ctx, args[1:], getenv, stdout, stderr, version)
	case "admin":
		err = server.Admin(ctx, args[1:], getenv, stdout, stderr)
	case "sessions", "contexts", "extensions", "projects":
		return cli.Run(ctx, args, getenv, stdout, stderr, version) // internal/cli: its own exit codes
	case "bench":
		err = bench.Run(ctx, args[1:], stdout, stderr, version)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "browserd", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "browserd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		if errors.Is(err, server.ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}
