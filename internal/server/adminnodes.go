package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	bb "github.com/browserd/browserd"
)

// adminNodes runs `browserd admin nodes list|drain`: the members of the cluster of a
// PostgreSQL database (members.go).
func adminNodes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprint(stderr, adminUsage)
		return usageError{errors.New("admin nodes needs an action: list or drain")}
	}
	action := args[0]
	database := getenv("BROWSERD_DATABASE")
	fs := flag.NewFlagSet("admin nodes "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&database, "database", database, "the cluster's PostgreSQL database, postgres://USER:PASS@HOST:PORT/DB?sslmode=… (env BROWSERD_DATABASE)")
	asJSON := fs.Bool("json", false, "print JSON")
	// Flags may come before or after the node id: parse again after each argument.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	cfg := Config{Database: database}
	if cfg.DatabaseKind() != kindPostgres {
		return usageError{errors.New("admin nodes needs the cluster's PostgreSQL database: --database postgres://… (or BROWSERD_DATABASE)")}
	}
	switch {
	case action == "list" && len(pos) == 0:
	case action == "drain" && len(pos) == 1:
	default:
		fmt.Fprint(stderr, adminUsage)
		return usageError{fmt.Errorf("unknown admin command %q", strings.Join(append([]string{"nodes"}, args...), " "))}
	}
	db, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	nodes, ok := db.(bb.NodeStore)
	if !ok {
		return errors.New("the database keeps no cluster members")
	}
	if action == "drain" {
		id := pos[0]
		if err := nodes.SetNodeState(ctx, id, bb.NodeDraining); err != nil {
			return fmt.Errorf("drain node %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "node %s is draining: it takes no new sessions from its next heartbeat (within seconds), "+
			"lets its sessions run up to its --drain-timeout, ends the rest and exits\n", id)
		return nil
	}
	all, err := nodes.Nodes(ctx)
	if err != nil {
		return err
	}
	return printNodes(stdout, *asJSON, all, time.Now())
}

// printNodes prints the members, with their heartbeat's age as of now (this machine's
// clock: a few seconds of skew against the database's do not change the picture).
func printNodes(w io.Writer, asJSON bool, nodes []*bb.Node, now time.Time) error {
	if asJSON {
		out := make([]map[string]any, 0, len(nodes))
		for _, n := range nodes {
			warm := n.Warm
			if warm == nil {
				warm = []string{}
			}
			out = append(out, map[string]any{"id": n.ID, "url": n.URL, "state": string(n.State),
				"capacity": n.Capacity, "live": n.Live, "warm": warm, "version": n.Version,
				"startedAt": n.StartedAt.Format(time.RFC3339Nano), "heartbeatAt": n.HeartbeatAt.Format(time.RFC3339Nano)})
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tSTATE\tCAPACITY\tLIVE\tHEARTBEAT\tVERSION")
	for _, n := range nodes {
		age := now.Sub(n.HeartbeatAt).Round(100 * time.Millisecond)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s ago\t%s\n", n.ID, n.URL, n.State, n.Capacity, n.Live, max(age, 0), n.Version)
	}
	return tw.Flush()
}
