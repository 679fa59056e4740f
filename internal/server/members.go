package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cluster"
)

// Cluster membership and draining in `browserd serve` (docs/ARCHITECTURE.md "Cluster",
// docs/RELIABILITY.md "Node loss, fencing and draining").

// defaultDrainTimeout is --drain-timeout's default.
const defaultDrainTimeout = 5 * time.Minute

// clusterFlags defines --cluster-url and --drain-timeout.
func (c *Config) clusterFlags(f flagTable) {
	f.str(&c.ClusterURL, "cluster-url", "join the cluster of the PostgreSQL --database: this node's URL for its peers, http(s)://HOST:PORT without a path (e.g. http://10.0.3.7:8080); empty runs a single node")
	f.dur(&c.DrainTimeout, "drain-timeout", "on SIGTERM (or `browserd admin nodes drain`), take no new sessions and let the live ones run this long before ending the rest; the default applies with --cluster-url, and without one only when given (else SIGTERM ends the sessions at once); 0 ends them at once")
}

// validateCluster checks --cluster-url and --drain-timeout.
func (c *Config) validateCluster() []error {
	var errs []error
	if c.ClusterURL != "" {
		if err := cluster.CheckURL(c.ClusterURL); err != nil {
			errs = append(errs, fmt.Errorf("cluster-url: %w", err))
		}
		if c.DatabaseKind() != kindPostgres {
			errs = append(errs, errors.New("cluster-url needs a PostgreSQL --database (postgres://…): the nodes of a cluster share one database, which SQLite cannot be"))
		}
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, errors.New("drain-timeout must not be negative"))
	}
	return errs
}

// drainTimeout is how long a SIGTERM waits for sessions: --drain-timeout in a cluster,
// and without one only when it was given.
func (c *Config) drainTimeout() time.Duration {
	if c.ClusterURL != "" || c.DrainSet {
		return c.DrainTimeout
	}
	return 0
}

// joinCluster makes the node a member of its database's cluster (--cluster-url): it
// joins now, renews in the background, exposes the cluster gauges and readiness, and
// leaves (marked left) in Close, after the sessions ended and the blobs were flushed.
func (m *Main) joinCluster(ctx context.Context, cfg Config, db Store, mgr *bb.Manager, node string, reserved *bb.ReservedPorts, o *ops, logger *slog.Logger) error {
	store, ok := db.(bb.NodeStore)
	if !ok { // Validate refuses --cluster-url without PostgreSQL
		return errors.New("cluster-url: the database keeps no cluster members (it is not PostgreSQL)")
	}
	member, err := cluster.New(cluster.Config{Store: store, Local: mgr, ID: node, URL: cfg.ClusterURL,
		Capacity: cfg.MaxSessions, Version: m.Version, Logger: logger})
	if err != nil {
		return err
	}
	if err := member.Start(ctx); err != nil {
		return err
	}
	m.member = member
	m.peers.set(member) // the forwarder's view of the members (cluster.go)
	m.closePeerWatch(watchPeers(member, node, reserved, logger))
	o.ready.cluster = func() check {
		switch {
		case member.Draining():
			return check{Detail: "draining"}
		case !member.IsMember():
			return check{Detail: "not a member: fenced (no heartbeat within the lease); joining again"}
		}
		return check{OK: true, Detail: "member"}
	}
	return o.metrics.WatchCluster(member)
}

// leaveCluster is Close's last step before the store closes: a node that drained or
// shut down in order is marked left, so that no peer reports it lost.
func (m *Main) leaveCluster(ctx context.Context) error {
	if m.member == nil {
		return nil
	}
	return m.member.Leave(ctx)
}

// DrainRequested is closed when an admin set this node draining in the database
// (`browserd admin nodes drain`); nil (never ready) without a cluster.
func (m *Main) DrainRequested() <-chan struct{} {
	if m.member == nil {
		return nil
	}
	return m.member.DrainRequested()
}

// Drain stops taking sessions (creates answer 503 "node draining", placement passes
// the node by) and waits up to timeout for the live sessions to end; Close then ends
// the rest COMPLETED. It returns early when the HTTP server stops by itself.
func (m *Main) Drain(timeout time.Duration) {
	if m.mgr == nil {
		return
	}
	if m.member != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.member.Drain(ctx); err != nil {
			m.log.Error("drain: mark the node draining in the database", "err", err)
		}
		cancel()
	}
	m.mgr.Drain()
	live, _ := m.mgr.Load()
	if live == 0 || timeout <= 0 {
		return
	}
	m.log.Warn("draining: waiting for the live sessions to end", "live_sessions", live, "drain_timeout", timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			live, _ := m.mgr.Load()
			m.log.Warn("drain timeout: ending the sessions still live", "live_sessions", live)
			return
		case <-m.Done():
			return
		case <-tick.C:
			if live, _ := m.mgr.Load(); live == 0 {
				m.log.Info("drained: every session ended")
				return
			}
		}
	}
}
