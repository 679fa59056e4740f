package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// The stand-in for the membership loop (internal/cluster's Member, the membership work):
// at merge, openCluster takes the Member as its peersView and this file goes.

// membersInterval is how often pollMembers renews this node and re-reads the others.
const membersInterval = 2 * time.Second

// pollMembers is this node's view of the cluster, read from the NodeStore every
// membersInterval, with this node's load written back (a stand-in for the membership
// loop of internal/cluster, which adds expiry, fencing and draining).
type pollMembers struct {
	store   bb.NodeStore
	self    string
	url     string
	mgr     *bb.Manager
	version string
	log     *slog.Logger

	mu    sync.Mutex
	nodes []*bb.Node
}

// Peers returns every node as read at the last refresh.
func (pm *pollMembers) Peers() []*bb.Node {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.nodes
}

// Placeable is always true: the stand-in knows no fencing or draining.
func (pm *pollMembers) Placeable() bool { return true }

func (pm *pollMembers) load() (live int, warm []string) {
	used, _, _ := pm.mgr.Capacity()
	if st := pm.mgr.PoolStats(); st.Ready-st.KeyedReady > 0 {
		warm = []string{""}
	}
	return used, warm
}

func (pm *pollMembers) join(ctx context.Context) error {
	_, capacity, _ := pm.mgr.Capacity()
	if err := pm.store.JoinNode(ctx, &bb.Node{ID: pm.self, URL: pm.url, Capacity: capacity, Version: pm.version}); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	return pm.refresh(ctx)
}

func (pm *pollMembers) refresh(ctx context.Context) error {
	live, warm := pm.load()
	if _, err := pm.store.Heartbeat(ctx, pm.self, live, warm); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	ns, err := pm.store.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("read the cluster's nodes: %w", err)
	}
	pm.mu.Lock()
	pm.nodes = ns
	pm.mu.Unlock()
	return nil
}

func (pm *pollMembers) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := pm.refresh(ctx); err != nil && ctx.Err() == nil {
				pm.log.Warn("cluster members", "err", err)
			}
		}
	}
}

func (pm *pollMembers) leave(ctx context.Context) error {
	if err := pm.store.SetNodeState(ctx, pm.self, bb.NodeLeft); err != nil && bb.CodeOf(err) != bb.CodeNotFound {
		return fmt.Errorf("leave the cluster: %w", err)
	}
	return nil
}
