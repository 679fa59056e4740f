package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/sqlite"
)

// dbSource is what `admin migrate` reads: a SQLite database (*sqlite.DB).
type dbSource interface {
	Store
	Settings(ctx context.Context) (map[string][]byte, error)
	Contexts(ctx context.Context) ([]*bb.Context, error)
	Extensions(ctx context.Context) ([]*bb.Extension, error)
}

// dbTarget is what `admin migrate` writes: a PostgreSQL database (*postgres.DB).
type dbTarget interface {
	Store
	ImportSessionLogs(ctx context.Context, logs []bb.SessionLog) (int, error)
}

// dbLogPage is how many log rows migrate reads and writes at a time.
const dbLogPage = 1000

// adminMigrate runs `browserd admin migrate --from FILE --to URL`.
func adminMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database file to copy (<data-dir>/browserd.db)")
	to := fs.String("to", "", "the PostgreSQL database to copy into: postgres://USER:PASS@HOST:PORT/DB?sslmode=…")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *from == "" || *to == "":
		return usageError{errors.New("admin migrate needs --from SQLITE-FILE and --to postgres://…")}
	case !postgres.IsURL(*to):
		return usageError{errors.New("--to must be a postgres:// or postgresql:// URL")}
	case postgres.IsURL(*from):
		return usageError{errors.New("--from must be a SQLite file")}
	}
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("no database at %s: %w", *from, err)
	}
	src, err := sqlite.Open(ctx, *from, nil)
	if err != nil {
		return fmt.Errorf("open %s: %w", *from, err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, nil)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer dst.Close()
	return migrateDB(ctx, src, dst, stdout)
}

// dbCount is what migrate did with one kind of row.
type dbCount struct {
	name            string
	copied, present int
}

// migrateDB copies src into dst: settings, projects, API keys, contexts, extensions and
// ended sessions with their artifact state and logs, in that order (each row after what
// it refers to). Rows dst has already (by id; logs by session and number) are left as
// they are, so a second run copies nothing and an interrupted one can be run again.
// Live sessions are not copied: their browsers ran on the SQLite server, whose next
// start ends them. It prints a line per kind of row to out.
func migrateDB(ctx context.Context, src dbSource, dst dbTarget, out io.Writer) error {
	counts := map[string]*dbCount{}
	var order []string
	count := func(name string, copied bool) {
		c := counts[name]
		if c == nil {
			c = &dbCount{name: name}
			counts[name] = c
			order = append(order, name)
		}
		if copied {
			c.copied++
		} else {
			c.present++
		}
	}
	// exists tells a conflict (the row is there) from success; other errors stop.
	exists := func(err error) (bool, error) {
		if bb.CodeOf(err) == bb.CodeConflict {
			return true, nil
		}
		return false, err
	}

	settings, err := src.Settings(ctx)
	if err != nil {
		return err
	}
	for name, v := range settings {
		got, err := dst.SettingOrInit(ctx, name, v)
		if err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
		if !bytes.Equal(got, v) {
			if name == settingSnapshotKey {
				return fmt.Errorf("the target database has another context snapshot key (a server started on it " +
					"already): the copied contexts could not be read there; migrate into an empty database")
			}
			if name == settingWebhookKey {
				return fmt.Errorf("the target database has another webhook secret key (a server started on it " +
					"already): the copied webhooks' secrets could not be read there; migrate into an empty database")
			}
			fmt.Fprintf(out, "setting %s: the target's own value is kept\n", name)
		}
	}
	// SettingOrInit cannot tell a copy from a value already there, and need not.
	fmt.Fprintf(out, "settings: %d in place\n", len(settings))

	projects, err := src.Projects(ctx)
	if err != nil {
		return err
	}
	for _, p := range projects {
		found, err := exists(dst.CreateProject(ctx, p))
		if err != nil {
			return fmt.Errorf("project %s: %w", p.ID, err)
		}
		count("projects", !found)
		keys, err := src.APIKeys(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			found, err := exists(dst.CreateAPIKey(ctx, k))
			if err != nil {
				return fmt.Errorf("api key %s: %w", k.ID, err)
			}
			count("api keys", !found)
		}
		certs, err := src.Certificates(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, c := range certs {
			found, err := exists(dst.CreateCertificate(ctx, c, math.MaxInt32)) // the source kept its limit
			if err != nil {
				return fmt.Errorf("certificate %s: %w", c.ID, err)
			}
			count("certificates", !found)
		}
		// The bytes its fetches read through managed proxies (its usage): copied once,
		// when the target has none for the project, so a second run adds nothing.
		if n, err := src.FetchProxyBytes(ctx, p.ID); err != nil {
			return err
		} else if n > 0 {
			have, err := dst.FetchProxyBytes(ctx, p.ID)
			if err != nil {
				return err
			}
			if have == 0 {
				if err := dst.AddFetchProxyBytes(ctx, p.ID, n); err != nil {
					return fmt.Errorf("fetch usage of project %s: %w", p.ID, err)
				}
			}
			count("fetch usage", have == 0)
		}
	}

	contexts, err := src.Contexts(ctx)
	if err != nil {
		return err
	}
	for _, c := range contexts {
		if _, err := dst.Context(ctx, c.ID); err == nil {
			count("contexts", false)
			continue
		} else if bb.CodeOf(err) != bb.CodeNotFound {
			return fmt.Errorf("context %s: %w", c.ID, err)
		}
		if err := dst.CreateContext(ctx, c); err != nil {
			return fmt.Errorf("context %s: %w", c.ID, err)
		}
		count("contexts", true)
	}
	exts, err := src.Extensions(ctx)
	if err != nil {
		return err
	}
	for _, e := range exts {
		found, err := exists(dst.CreateExtension(ctx, e))
		if err != nil {
			return fmt.Errorf("extension %s: %w", e.ID, err)
		}
		count("extensions", !found)
	}

	// Webhooks (their sealed secrets work with the copied key); deliveries, pending ones
	// included, are not copied (docs/COMPATIBILITY.md "Webhooks").
	for _, p := range projects {
		var after *bb.PageCursor
		for {
			hooks, err := src.Webhooks(ctx, p.ID, after, 100)
			if err != nil {
				return err
			}
			for _, w := range hooks {
				found, err := exists(dst.CreateWebhook(ctx, w))
				if err != nil {
					return fmt.Errorf("webhook %s: %w", w.ID, err)
				}
				count("webhooks", !found)
			}
			if len(hooks) < 100 {
				break
			}
			after = &bb.PageCursor{CreatedAt: hooks[len(hooks)-1].CreatedAt, ID: hooks[len(hooks)-1].ID}
		}
	}

	sessions, err := src.Sessions(ctx, bb.SessionFilter{})
	if err != nil {
		return err
	}
	live := 0
	for i := len(sessions) - 1; i >= 0; i-- { // oldest first
		s := sessions[i]
		if !s.Status.Terminal() {
			live++
			continue
		}
		found, err := exists(dst.CreateSession(ctx, s, math.MaxInt32)) // ended: no slot taken
		if err != nil {
			return fmt.Errorf("session %s: %w", s.ID, err)
		}
		count("sessions", !found)
		if err := migrateDBArtifacts(ctx, src, dst, s, count); err != nil {
			return fmt.Errorf("session %s: %w", s.ID, err)
		}
	}

	for _, name := range order {
		c := counts[name]
		fmt.Fprintf(out, "%s: %d copied, %d already there\n", c.name, c.copied, c.present)
	}
	if live > 0 {
		fmt.Fprintf(out, "sessions: %d live ones not copied (start the server on the SQLite database once to end them, then migrate again)\n", live)
	}
	return nil
}

// migrateDBArtifacts copies a session's artifact state (marked, purged) and its logs.
func migrateDBArtifacts(ctx context.Context, src dbSource, dst dbTarget, s *bb.Session, count func(string, bool)) error {
	marked, purged, err := src.ArtifactsState(ctx, s.ID)
	if err != nil || !marked {
		return err
	}
	at := s.EndedAt
	if at.IsZero() {
		at = time.Now()
	}
	if err := dst.MarkArtifacts(ctx, s.ID, at); err != nil {
		return err
	}
	if purged {
		if _, donePurge, err := dst.ArtifactsState(ctx, s.ID); err != nil {
			return err
		} else if !donePurge {
			return dst.PurgeArtifacts(ctx, s.ID, at) // its logs are gone in the source too
		}
		return nil
	}
	for after := int64(0); ; {
		logs, err := src.SessionLogs(ctx, s.ID, after, dbLogPage)
		if err != nil || len(logs) == 0 {
			return err
		}
		n, err := dst.ImportSessionLogs(ctx, logs)
		if err != nil {
			return err
		}
		for i := range logs {
			count("log rows", i < n)
		}
		after = logs[len(logs)-1].Seq
	}
}
