package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The client commands (browserd sessions|contexts|extensions|projects …) talk to a
// browserd server, or Browserbase itself, over the v1 API. Exit codes, for scripts:
const (
	exitOK       = 0 // success
	exitError    = 1 // anything else: network, server error (5xx), bad response
	exitUsage    = 2 // the command line is wrong
	exitNotFound = 3 // 404, or 410 Gone: no such session/context/extension/project, or it ended
	exitAuth     = 4 // 401, 403: missing or wrong API key, or a project the key may not use
	exitLimit    = 5 // 429, 503: concurrency limit, node capacity, shutting down; retry later
	exitRejected = 6 // 400, 409, 413, 415, 422: the server refused the request as invalid
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

// runClient runs a client command and returns the exit code.
func runClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
		fmt.Fprint(stderr, clientUsage)
		return exitUsage
	}
	cmd, ok := clientCommands()[args[0]+" "+args[1]]
	if !ok {
		fmt.Fprintf(stderr, "browserd: unknown command %q\n\n%s", args[0]+" "+args[1], clientUsage)
		return exitUsage
	}
	cl := &cli{stdout: stdout, stderr: stderr, name: args[0] + " " + args[1]}
	fs := flag.NewFlagSet(cl.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cl.baseURL, "url", envOr(getenv, "BROWSERBASE_BASE_URL", "http://127.0.0.1:8080"), "server base URL (env BROWSERBASE_BASE_URL)")
	fs.StringVar(&cl.apiKey, "api-key", getenv("BROWSERBASE_API_KEY"), "API key (env BROWSERBASE_API_KEY)")
	fs.BoolVar(&cl.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&cl.reqTimeout, "timeout-request", 2*time.Minute, "give up on a request after this long")
	cmd.flags(fs, cl)
	pos, err := parseInterleaved(fs, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil && (len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs) {
		err = fmt.Errorf("%s takes %s", cl.name, cmd.argsHelp)
	}
	if err == nil {
		err = cl.init()
	}
	if err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		return exitUsage
	}
	if err := cmd.run(ctx, cl, pos); err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		return exitCode(err)
	}
	return exitOK
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
	baseURL        string
	apiKey         string
	json           bool
	reqTimeout     time.Duration
	stdout, stderr io.Writer

	base *url.URL
	http *http.Client

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
	u, err := url.Parse(strings.TrimRight(cl.baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url must be an absolute http(s) URL, got %q", cl.baseURL)
	}
	if cl.apiKey == "" {
		return errors.New("no API key: pass --api-key or set BROWSERBASE_API_KEY")
	}
	cl.base = u
	cl.http = &http.Client{}
	if cl.progressTo == nil && isTerminal(cl.stderr) {
		cl.progressTo = cl.stderr
	}
	return nil
}

// apiError is an error answer of the server.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return exitUsage
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return exitError
	}
	switch ae.Status {
	case http.StatusNotFound, http.StatusGone:
		return exitNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitAuth
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return exitLimit
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return exitRejected
	}
	return exitError
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	contentType  string
	want         int // expected status
}

// send does an API request and returns the response on the expected status; any other
// status becomes an *apiError. The caller closes the body.
func (cl *cli) send(ctx context.Context, r request) (*http.Response, error) {
	u := *cl.base
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-BB-API-Key", cl.apiKey)
	req.Header.Set("User-Agent", "browserd-cli/"+version)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, errors.Unwrap(err))
	}
	if resp.StatusCode == r.want {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status says enough
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, &apiError{Status: resp.StatusCode, Message: msg}
}

// call does a JSON API request and returns the body; a nil body sends none.
func (cl *cli) call(ctx context.Context, method, path string, query url.Values, body any, want int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.reqTimeout)
	defer cancel()
	r := request{method: method, path: path, query: query, want: want}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r.body, r.contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := cl.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return b, nil
}

// output prints a JSON answer: indented with --json, else as render makes it.
func (cl *cli) output(body []byte, v any, render func() error) error {
	if cl.json {
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			return fmt.Errorf("the server answered with invalid JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := cl.stdout.Write(buf.Bytes())
		return err
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("the server's answer does not decode: %w", err)
		}
	}
	return render()
}
