package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/browserd/browserd/internal/client"
)

// createFlags are the flags of `sessions create`.
type createFlags struct {
	keepAlive                  bool
	timeout                    int
	region, context, extension string
	persist                    bool
	metadata, body             string
}

func sessionCommands() map[string]clientCommand {
	oneID := "one session ID"
	return map[string]clientCommand{
		"sessions create": {argsHelp: "no arguments", flags: func(fs *flag.FlagSet, cl *cli) {
			f := &cl.create
			fs.BoolVar(&f.keepAlive, "keep-alive", false, "keep the session after clients disconnect")
			fs.IntVar(&f.timeout, "timeout", 0, "end the session after this many seconds (60..21600; default: the project's)")
			fs.StringVar(&f.region, "region", "", "region to echo (us-west-2, us-east-1, eu-central-1, ap-southeast-1)")
			fs.StringVar(&f.context, "context", "", "context ID to load into the browser")
			fs.BoolVar(&f.persist, "persist", false, "with --context: save the browser state back at the end")
			fs.StringVar(&f.extension, "extension", "", "extension ID to load")
			fs.StringVar(&f.metadata, "metadata", "", "userMetadata, a JSON object")
			fs.StringVar(&f.body, "body", "", "a whole create request body (JSON object); the flags above are added to it")
		}, run: cmdSessionCreate},
		"sessions list": {argsHelp: "no arguments", flags: func(fs *flag.FlagSet, cl *cli) {
			fs.StringVar(&cl.status, "status", "", "only sessions with this status (PENDING, RUNNING, ERROR, TIMED_OUT, COMPLETED)")
			fs.StringVar(&cl.q, "q", "", "metadata query, e.g. user_metadata['env']:'prod'")
		}, run: cmdSessionList},
		"sessions get":       {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: noFlags, run: cmdSessionGet},
		"sessions release":   {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: noFlags, run: cmdSessionRelease},
		"sessions logs":      {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: noFlags, run: cmdSessionLogs},
		"sessions recording": {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: noFlags, run: cmdSessionRecording},
		"sessions debug": {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: func(fs *flag.FlagSet, cl *cli) {
			fs.IntVar(&cl.expiresIn, "expires-in", 0, "lifetime of the URLs in seconds (default: the session's)")
			fs.BoolVar(&cl.readOnly, "read-only", false, "URLs that can watch but not control the browser")
		}, run: cmdSessionDebug},
		"sessions downloads": {minArgs: 1, maxArgs: 1, argsHelp: oneID, flags: func(fs *flag.FlagSet, cl *cli) {
			fs.StringVar(&cl.outFile, "o", "", "where to write the ZIP (default <ID>-downloads.zip; - for stdout)")
		}, run: cmdSessionDownloads},
		"sessions upload": {minArgs: 2, maxArgs: 2, argsHelp: "a session ID and a file", flags: noFlags, run: cmdSessionUpload},
	}
}

func cmdSessionCreate(ctx context.Context, cl *cli, _ []string) error {
	f := cl.create
	body := map[string]any{}
	if f.body != "" {
		if err := json.Unmarshal([]byte(f.body), &body); err != nil {
			return usageError{fmt.Errorf("--body must be a JSON object: %w", err)}
		}
	}
	if f.keepAlive {
		body["keepAlive"] = true
	}
	if f.timeout != 0 {
		body["timeout"] = f.timeout
	}
	if f.region != "" {
		body["region"] = f.region
	}
	if f.extension != "" {
		body["extensionId"] = f.extension
	}
	if f.metadata != "" {
		var md map[string]any
		if err := json.Unmarshal([]byte(f.metadata), &md); err != nil {
			return usageError{fmt.Errorf("--metadata must be a JSON object: %w", err)}
		}
		body["userMetadata"] = md
	}
	if f.context != "" {
		bs, _ := body["browserSettings"].(map[string]any) // absent or not an object: replaced
		if bs == nil {
			bs = map[string]any{}
		}
		bs["context"] = map[string]any{"id": f.context, "persist": f.persist}
		body["browserSettings"] = bs
	} else if f.persist {
		return usageError{errors.New("--persist needs --context")}
	}
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	s, err := cl.api.CreateSession(ctx, body)
	return cl.output(err, func() error { return cl.printSession(s) })
}

func cmdSessionList(ctx context.Context, cl *cli, _ []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	ss, err := cl.api.Sessions(ctx, client.SessionFilter{Status: cl.status, Q: cl.q})
	return cl.output(err, func() error {
		t := cl.table("ID", "STATUS", "CREATED", "ENDED", "KEEP-ALIVE", "REGION")
		for _, s := range ss {
			t.row(s.ID, s.Status, s.CreatedAt, dash(s.EndedAt), strconv.FormatBool(s.KeepAlive), s.Region)
		}
		return t.flush()
	})
}

func cmdSessionGet(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	s, err := cl.api.Session(ctx, args[0])
	return cl.output(err, func() error { return cl.printSession(s) })
}

func cmdSessionRelease(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	s, err := cl.api.ReleaseSession(ctx, args[0])
	return cl.output(err, func() error { return cl.printSession(s) })
}

// printSession prints one session as a two-column table.
func (cl *cli) printSession(s *client.Session) error {
	t := cl.table()
	t.pair("id", s.ID)
	t.pair("status", s.Status)
	t.pair("project", s.ProjectID)
	t.pair("created", s.CreatedAt)
	t.pair("started", s.StartedAt)
	t.pair("expires", s.ExpiresAt)
	t.pair("ended", s.EndedAt)
	t.pair("keep alive", strconv.FormatBool(s.KeepAlive))
	t.pair("region", s.Region)
	t.pair("context", s.ContextID)
	if len(s.UserMetadata) > 0 {
		t.pair("metadata", string(s.UserMetadata))
	}
	if s.AvgCPUUsage != nil {
		t.pair("cpu", strconv.FormatInt(*s.AvgCPUUsage, 10)+"% of a core (average)")
	}
	if s.MemoryUsage != nil {
		t.pair("memory", humanBytes(*s.MemoryUsage))
	}
	t.pair("connect url", s.ConnectURL)
	t.pair("selenium url", s.SeleniumRemoteURL)
	return t.flush()
}

func cmdSessionLogs(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	logs, err := cl.api.SessionLogs(ctx, args[0])
	return cl.output(err, func() error {
		t := cl.table("TIME", "PAGE", "METHOD", "RESPONSE")
		for _, l := range logs {
			at, answer := "-", "none"
			if l.Request != nil && l.Request.Timestamp > 0 {
				at = time.UnixMilli(l.Request.Timestamp).UTC().Format(timeFormatCLI)
			}
			if l.Response != nil {
				answer = "ok"
				if _, failed := l.Response.Result["error"]; failed {
					answer = "error"
				}
				if l.Request != nil && l.Request.Timestamp > 0 && l.Response.Timestamp >= l.Request.Timestamp {
					answer += fmt.Sprintf(" in %d ms", l.Response.Timestamp-l.Request.Timestamp)
				}
			}
			t.row(at, strconv.Itoa(l.PageID), l.Method, answer)
		}
		return t.flush()
	})
}

func cmdSessionRecording(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	events, err := cl.api.SessionRecording(ctx, args[0])
	return cl.output(err, func() error {
		byType := map[int]int{}
		for _, e := range events {
			byType[e.Type]++
		}
		types := make([]int, 0, len(byType))
		for ty := range byType {
			types = append(types, ty)
		}
		sort.Ints(types)
		t := cl.table("RRWEB TYPE", "EVENTS")
		for _, ty := range types {
			t.row(rrwebType(ty), strconv.Itoa(byType[ty]))
		}
		t.row("total", strconv.Itoa(len(events)))
		return t.flush()
	})
}

// rrwebType names an rrweb event type (spec §2.7).
func rrwebType(t int) string {
	names := []string{"DomContentLoaded", "Load", "FullSnapshot", "IncrementalSnapshot", "Meta", "Custom", "Plugin"}
	if t >= 0 && t < len(names) {
		return fmt.Sprintf("%d %s", t, names[t])
	}
	return strconv.Itoa(t)
}

func cmdSessionDebug(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	lv, err := cl.api.SessionDebug(ctx, args[0], client.DebugOptions{ExpiresIn: cl.expiresIn, ReadOnly: cl.readOnly})
	return cl.output(err, func() error {
		t := cl.table()
		t.pair("live view", lv.DebuggerFullscreenURL)
		t.pair("devtools", lv.DebuggerURL)
		t.pair("websocket", lv.WSURL)
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(cl.stdout)
		pt := cl.table("PAGE", "URL", "LIVE VIEW") // titles (in --json) change as pages load
		for _, p := range lv.Pages {
			pt.row(p.ID, p.URL, p.DebuggerFullscreenURL)
		}
		return pt.flush()
	})
}

func cmdSessionDownloads(ctx context.Context, cl *cli, args []string) error {
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	zip, size, err := cl.api.SessionDownloads(ctx, args[0])
	if err != nil {
		return err
	}
	defer zip.Close()
	name := cl.outFile
	if name == "" {
		name = args[0] + "-downloads.zip"
	}
	var w io.Writer = cl.stdout
	var f *os.File
	if name != "-" {
		if f, err = os.Create(name); err != nil {
			return err
		}
		w = f
	}
	p := cl.progress("downloading", size)
	n, err := io.Copy(w, io.TeeReader(zip, p))
	p.done()
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name()) // a partial ZIP is worse than none; the error says why
		}
	}
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if name == "-" {
		return nil
	}
	if cl.json {
		return json.NewEncoder(cl.stdout).Encode(map[string]any{"file": name, "bytes": n})
	}
	fmt.Fprintf(cl.stdout, "saved %s (%s) to %s\n", plural(n, "byte"), humanBytes(n), name)
	return nil
}

func cmdSessionUpload(ctx context.Context, cl *cli, args []string) error {
	var up *client.Uploaded
	err := cl.uploadFile(ctx, args[1], func(ctx context.Context, name string, r io.Reader) (err error) {
		up, err = cl.api.UploadSessionFile(ctx, args[0], name, r)
		return err
	})
	return cl.output(err, func() error {
		_, err := fmt.Fprintf(cl.stdout, "%s: /tmp/.uploads/%s\n", up.Message, filepath.Base(args[1]))
		return err
	})
}

// uploadFile opens a file and streams it with upload, showing progress.
func (cl *cli) uploadFile(ctx context.Context, file string, upload func(ctx context.Context, name string, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	p := cl.progress("uploading", st.Size())
	ctx, cancel := cl.withTimeout(ctx)
	defer cancel()
	err = upload(ctx, filepath.Base(file), io.TeeReader(f, p))
	p.done()
	return err
}
