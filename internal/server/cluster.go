package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdpproxy"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/liveview"
	"github.com/browserd/browserd/internal/webdriver"
)

// clusterParts are what the forwarder needs of the server's other parts.
type clusterParts struct {
	db     Store
	node   string // this node's id (bootstrap.go nodeID)
	mgr    *bb.Manager
	wd     *webdriver.Handler
	logger *slog.Logger
}

// openCluster puts the cluster's forwarder in front of the route table when
// --cluster-url is set (docs/ARCHITECTURE.md "Cluster"), and returns the handler and the
// check of a verified hop that the failed-authentication limit counts real clients by.
// Without --cluster-url it returns next and a check that is always false.
func (m *Main) openCluster(ctx context.Context, p clusterParts, next http.Handler) (http.Handler, func(*http.Request) bool, error) {
	cfg := m.Config
	if cfg.ClusterURL == "" {
		return next, func(*http.Request) bool { return false }, nil
	}
	keys, err := cluster.NewKeyring(ctx, p.db)
	if err != nil {
		return nil, nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		keys.Run(loopCtx, cluster.RefreshInterval, func(err error) { p.logger.Warn("cluster secret", "err", err) })
	})
	m.onClose(func(context.Context) error {
		cancel()
		wg.Wait()
		return nil
	})
	// Until membership starts (m.peers.set in joinCluster, members.go), the forwarder
	// knows no peers: it serves everything here, creates included.
	fwd := cluster.NewForwarder(cluster.ForwarderConfig{
		Members:  memberView{peers: &m.peers, self: p.node},
		Sessions: p.db,
		Keys:     keys,
		Routes: []cluster.SessionOf{
			httpapi.SessionOfRequest, cdpproxy.SessionOfRequest, liveview.SessionOfRequest, p.wd.SessionOfRequest,
		},
		MaxCreateBody: httpapi.DefaultMaxBodyBytes,
		Logger:        p.logger,
	}, next)
	return fwd, verifiedHop(keys), nil
}

// verifiedHop returns the check of a request a peer forwarded: its HopHeader verifies
// under keys. A client's made-up one does not make it a peer's.
func verifiedHop(keys *cluster.Keyring) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if _, ok := r.Header[cluster.HopHeader]; !ok {
			return false
		}
		_, err := keys.Verify(r)
		return err == nil
	}
}

// peersView is what the membership loop offers the forwarder (*cluster.Member has it;
// from joinCluster on): every node as read at the last heartbeat, this one
// included, and whether this node takes new sessions.
type peersView interface {
	Peers() []*bb.Node
	Placeable() bool
}

// livePeers is the peersView the forwarder reads: none until membership starts
// (Main.peers.set), then the membership's.
type livePeers struct{ p atomic.Pointer[peersView] }

func (l *livePeers) set(p peersView) { l.p.Store(&p) }

// Peers returns the members, none before membership started.
func (l *livePeers) Peers() []*bb.Node {
	if p := l.p.Load(); p != nil {
		return (*p).Peers()
	}
	return nil
}

// Placeable is false before membership started.
func (l *livePeers) Placeable() bool {
	p := l.p.Load()
	return p != nil && (*p).Placeable()
}

// memberView adapts a peersView to cluster.Members: live nodes by id, and this node's id.
type memberView struct {
	peers peersView
	self  string
}

// Node returns a live member by id.
func (v memberView) Node(id string) (bb.Node, bool) {
	for _, n := range v.peers.Peers() {
		if n.ID == id && n.State.Live() {
			return *n, true
		}
	}
	return bb.Node{}, false
}

// Nodes returns the live members.
func (v memberView) Nodes() []bb.Node {
	var ns []bb.Node
	for _, n := range v.peers.Peers() {
		if n.State.Live() {
			ns = append(ns, *n)
		}
	}
	return ns
}

// Self returns this node's id.
func (v memberView) Self() string { return v.self }

// Placeable reports whether this node takes new sessions (placement skips it otherwise).
func (v memberView) Placeable() bool { return v.peers.Placeable() }

// adminCluster runs `browserd admin cluster rotate-secret`: a new cluster secret, the
// old one still accepted for a minute; every node reads it within
// cluster.RefreshInterval.
func adminCluster(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "rotate-secret" {
		fmt.Fprint(stderr, adminUsage)
		return usageError{fmt.Errorf("unknown admin command %q", strings.Join(append([]string{"cluster"}, args...), " "))}
	}
	cfg := DefaultConfig()
	if v := getenv("BROWSERD_DATABASE"); v != "" {
		cfg.Database = v
	}
	fs := flag.NewFlagSet("admin cluster rotate-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Database, "database", cfg.Database, "the cluster's PostgreSQL URL postgres://…")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if cfg.DatabaseKind() != kindPostgres {
		return usageError{errors.New("admin cluster rotate-secret needs the cluster's --database postgres://…")}
	}
	db, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	w, ok := db.(cluster.SettingWriter)
	if !ok {
		return errors.New("this database cannot rotate the cluster secret")
	}
	if err := cluster.Rotate(ctx, w, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster secret rotated; the previous one is accepted until %s\n",
		time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	return nil
}
