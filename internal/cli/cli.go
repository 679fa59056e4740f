package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/browserd/browserd/internal/client"
)

// The client commands (browserd sessions|contexts|extensions|projects …) talk to a
// browserd server, or Browserbase itself, over the v1 API. Exit codes, for scripts:
const (
	ExitOK       = 0 // success
	ExitError    = 1 // anything else: network, server error (5xx), bad response
	ExitUsage    = 2 // the command line is wrong
	ExitNotFound = 3 // 404, or 410 Gone: no such session/context/extension/project, or it ended
	ExitAuth     = 4 // 401, 403: missing or wrong API key, or a project the key may not use
	ExitLimit    = 5 // 429, 503: concurrency limit, node capacity, shutting down; retry later
	ExitRejected = 6 // 400, 409, 413, 415, 422: the server refused the request as invalid
)

const clientUsage = `Client commands talk to a browserd (or Browserbase) server:

  browserd sessions create [--keep-alive] [--timeout S] [--region R] [--context ID [--persist]]
                           [--extension ID] [--metadata JSON] [--body JSON]
  browserd sessions list [--status S] [--q QUERY]
  browserd sessions get|release|logs|recording ID
  browserd sessions debug ID [--expires-in S] [--read-only]
  browserd sessions downloads ID [-o FILE]       (default FILE: <ID>-downloads.zip; - for stdout)
  browserd sessions upload ID FILE
  browserd contexts create [--name N] | get ID | update ID | delete ID
  browserd extensions upload FILE | get ID | delete ID
  browserd projects list | get [ID] | usage [ID]  (ID defaults to the API key's project)

Every command takes:
  --url URL      server base URL (env BROWSERBASE_BASE_URL; default http://127.0.0.1:8080)
  --api-key KEY  API key (env BROWSERBASE_API_KEY)
  --json         print the server's JSON instead of a table
  --timeout-request D  give up on a request after D (default 2m)

Exit codes: 0 ok, 1 error, 2 usage, 3 not found or ended, 4 unauthorized,
5 limit reached or server unavailable (retry later), 6 request rejected as invalid.
`

// Run runs a client command, args[0] being the resource and args[1] the verb
// ("sessions", "get", ID, flags…), and returns its exit code: the codes above, which
// scripts rely on. Errors and usage go to stderr, results to stdout; getenv gives the
// environment (BROWSERBASE_BASE_URL, BROWSERBASE_API_KEY) and version goes into the
// User-Agent.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, version string) int {
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
		fmt.Fprint(stderr, clientUsage)
		return ExitUsage
	}
	cmd, ok := clientCommands()[args[0]+" "+args[1]]
	if !ok {
		fmt.Fprintf(stderr, "browserd: unknown command %q\n\n%s", args[0]+" "+args[1], clientUsage)
		return ExitUsage
	}
	cl := &cli{stdout: stdout, stderr: stderr, name: args[0] + " " + args[1], version: version}
	fs := flag.NewFlagSet(cl.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cl.baseURL, "url", envOr(getenv, "BROWSERBASE_BASE_URL", "http://127.0.0.1:8080"), "server base URL (env BROWSERBASE_BASE_URL)")
	fs.StringVar(&cl.apiKey, "api-key", getenv("BROWSERBASE_API_KEY"), "API key (env BROWSERBASE_API_KEY)")
	fs.BoolVar(&cl.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&cl.reqTimeout, "timeout-request", 2*time.Minute, "give up on a request after this long")
	cmd.flags(fs, cl)
	pos, err := parseInterleaved(fs, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err == nil && (len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs) {
		err = fmt.Errorf("%s takes %s", cl.name, cmd.argsHelp)
	}
	if err == nil {
		err = cl.init()
	}
	if err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		return ExitUsage
	}
	if err := cmd.run(ctx, cl, pos); err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		return exitCode(err)
	}
	return ExitOK
}

// clientCommand is one "resource verb" command.
type clientCommand struct {
	minArgs, maxArgs int
	argsHelp         string // for the usage error: "one session ID"
	flags            func(fs *flag.FlagSet, cl *cli)
	run              func(ctx context.Context, cl *cli, args []string) error
}

func noFlags(*flag.FlagSet, *cli) {}

// clientCommands returns every client command by "resource verb".
func clientCommands() map[string]clientCommand {
	cmds := sessionCommands()              // cli_sessions.go
	for k, v := range resourceCommands() { // cli_resources.go
		cmds[k] = v
	}
	return cmds
}

// parseInterleaved parses flags that may come after positional arguments too
// (browserd sessions get ID --json) and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// cli is the state of one client command.
type cli struct {
	name           string
	version        string
	baseURL        string
	apiKey         string
	json           bool
	reqTimeout     time.Duration
	stdout, stderr io.Writer

	api  *client.Client // keeps every answer's body in body, for --json
	body []byte

	// Command flags.
	create     createFlags
	status, q  string
	expiresIn  int
	readOnly   bool
	outFile    string
	ctxName    string
	progressTo io.Writer // where progress goes; set by tests, else stderr when it is a terminal
}

func (cl *cli) init() error {
	api, err := client.New(client.Config{BaseURL: cl.baseURL, APIKey: cl.apiKey, HTTPClient: &http.Client{},
		UserAgent: "browserd-cli/" + cl.version})
	if err != nil {
		return fmt.Errorf("--url must be an absolute http(s) URL, got %q", cl.baseURL)
	}
	if cl.apiKey == "" {
		return errors.New("no API key: pass --api-key or set BROWSERBASE_API_KEY")
	}
	cl.api = api.KeepBody(&cl.body)
	if cl.progressTo == nil && isTerminal(cl.stderr) {
		cl.progressTo = cl.stderr
	}
	return nil
}

// usageError marks errors in how a command was called (exit code 2).
type usageError struct{ error }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	if _, ok := errors.AsType[usageError](err); ok {
		return ExitUsage
	}
	ae, ok := errors.AsType[*client.Error](err)
	if !ok {
		return ExitError
	}
	switch ae.Status {
	case http.StatusNotFound, http.StatusGone:
		return ExitNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ExitAuth
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return ExitLimit
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return ExitRejected
	}
	return ExitError
}

// withTimeout bounds one request, body included, by --timeout-request.
func (cl *cli) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cl.reqTimeout)
}

// output prints the answer of a client call that returned err: with --json the server's
// JSON, indented, else as render makes it from the decoded value.
func (cl *cli) output(err error, render func() error) error {
	if cl.json && cl.body != nil {
		// The server's answer as it came, even one this client's structs cannot decode.
		var buf bytes.Buffer
		if err := json.Indent(&buf, cl.body, "", "  "); err != nil {
			return fmt.Errorf("the server answered with invalid JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := cl.stdout.Write(buf.Bytes())
		return err
	}
	if err != nil {
		return err
	}
	return render()
}
