package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	bb "github.com/browserd/browserd"
)

const adminUsage = `Usage:
  browserd admin projects create --name NAME [--concurrency N] [--default-timeout SECONDS] [--json]
  browserd admin projects list [--json]
  browserd admin keys create --project ID [--name NAME] [--json]
  browserd admin keys list --project ID [--json]
  browserd admin nodes list --database postgres://… [--json]
  browserd admin nodes drain NODE --database postgres://…
  browserd admin migrate --from SQLITE-FILE --to postgres://USER:PASS@HOST:PORT/DB?sslmode=…
  browserd admin migrate-blobs --from DATA-DIR --to s3://BUCKET[/PREFIX]?endpoint=…&region=…

The projects and keys commands take --data-dir (env BROWSERD_DATA_DIR) or --database
(env BROWSERD_DATABASE: a SQLite file or a postgres:// URL) and work on the database
directly; they are safe while the server runs. migrate copies a SQLite database into
PostgreSQL (projects, API keys, settings, contexts, extensions, ended sessions with their
logs); it may run again, copying only what is missing. nodes lists the members of a
cluster (id, URL, state, capacity, live sessions, heartbeat age) and drains one: it takes
no new sessions, lets its sessions run up to its --drain-timeout, ends the rest and exits.
`

// Admin runs `browserd admin args…`: it manages projects and API keys in the database
// (SQLite or PostgreSQL) directly, which is safe while the server runs, and copies a
// SQLite database into PostgreSQL (migrate.go). Errors in how it was called match
// ErrUsage; -help prints the flags and returns nil.
func Admin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" { // migrate.go: one word, its own flags
		return adminMigrate(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "nodes" { // adminnodes.go: PostgreSQL only
		return adminNodes(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "migrate-blobs" { // migrateblobs.go: its own flags
		return adminMigrateBlobs(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return usageError{errors.New("admin needs a resource and an action")}
	}
	resource, action := args[0], args[1]
	cfg := DefaultConfig()
	if v := getenv("BROWSERD_DATA_DIR"); v != "" {
		cfg.DataDir = v
	}
	if v := getenv("BROWSERD_DATABASE"); v != "" {
		cfg.Database = v
	}
	fs := flag.NewFlagSet("admin "+resource+" "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	fs.StringVar(&cfg.Database, "database", cfg.Database, "SQLite database file (default <data-dir>/browserd.db), or a PostgreSQL URL postgres://…")
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "name")
	concurrency := fs.Int("concurrency", bb.DefaultProjectConcurrency, "maximum concurrent sessions")
	defTimeout := fs.Int("default-timeout", bb.DefaultProjectTimeout, "session timeout in seconds when a create gives none")
	projectID := fs.String("project", "", "project id")
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if p := cfg.DatabasePath(); p != "" { // SQLite: the file must be there; a URL names a server
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("no database at %s (start `browserd serve` once, or pass --data-dir): %w", p, err)
		}
	}
	db, err := openStore(ctx, cfg, nil) // database.go: SQLite or PostgreSQL, migrated
	if err != nil {
		return err
	}
	defer db.Close()

	switch resource + " " + action {
	case "projects create":
		owner, err := db.SettingOrInit(ctx, settingOwnerID, []byte(bb.NewID()))
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		p := &bb.Project{ID: bb.NewID(), Name: *name, OwnerID: string(owner), DefaultTimeout: *defTimeout,
			Concurrency: *concurrency, CreatedAt: now, UpdatedAt: now}
		if err := p.Validate(); err != nil {
			return usageError{err}
		}
		if err := db.CreateProject(ctx, p); err != nil {
			return err
		}
		return printProjects(stdout, *asJSON, true, p)
	case "projects list":
		ps, err := db.Projects(ctx)
		if err != nil {
			return err
		}
		return printProjects(stdout, *asJSON, false, ps...)
	case "keys create":
		if _, err := db.Project(ctx, *projectID); err != nil {
			return fmt.Errorf("project %q: %w", *projectID, err)
		}
		key, err := createKey(ctx, db, *projectID, *name, "")
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"key": key, "projectId": *projectID})
		}
		fmt.Fprintf(stdout, "API key for project %s (shown only this once):\n%s\n", *projectID, key)
		return nil
	case "keys list":
		keys, err := db.APIKeys(ctx, *projectID)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]string, 0, len(keys))
			for _, k := range keys {
				out = append(out, map[string]string{"id": k.ID, "projectId": k.ProjectID, "name": k.Name,
					"createdAt": k.CreatedAt.Format(time.RFC3339Nano)})
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	fmt.Fprint(stderr, adminUsage)
	return usageError{fmt.Errorf("unknown admin command %q", resource+" "+action)}
}

func printProjects(w io.Writer, asJSON, one bool, ps ...*bb.Project) error {
	if asJSON {
		out := make([]map[string]any, 0, len(ps))
		for _, p := range ps {
			out = append(out, map[string]any{"id": p.ID, "name": p.Name, "ownerId": p.OwnerID,
				"concurrency": p.Concurrency, "defaultTimeout": p.DefaultTimeout,
				"createdAt": p.CreatedAt.Format(time.RFC3339Nano)})
		}
		if one {
			return json.NewEncoder(w).Encode(out[0])
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCONCURRENCY\tDEFAULT TIMEOUT")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%ds\n", p.ID, p.Name, p.Concurrency, p.DefaultTimeout)
	}
	return tw.Flush()
}
