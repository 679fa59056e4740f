package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// The stand-in for the membership loop (internal/cluster's Member, the membership work):
// at merge, openCluster takes the Member as its peersView and this file goes.

// startStandIn joins the cluster with the stand-in and hands it to the forwarder.
func (m *Main) startStandIn(ctx context.Context, p clusterParts) error {
	nodes, ok := p.db.(bb.NodeStore)
	if !ok {
		return errors.New("--cluster-url needs a shared PostgreSQL database (--database postgres://…)")
	}
	members := &pollMembers{store: nodes, self: p.node, url: m.Config.ClusterURL, mgr: p.mgr, version: m.Version, log: p.logger}
	if err := members.join(ctx); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		members.run(loopCtx, membersInterval)
	}()
	m.onClose(func(ctx context.Context) error {
		cancel()
		<-done
		return members.leave(ctx)
	})
	m.peers.set(members)
	return nil
}

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
