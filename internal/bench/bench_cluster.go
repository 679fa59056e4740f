package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/client"
	"github.com/browserd/browserd/internal/httpapi"
)

// benchClusterNodes is the size of the bench's cluster (issue 18 asks for 1 and 3).
const benchClusterNodes = 3

// benchClusterHowTo is the report's line when the phase has no database.
const benchClusterHowTo = "skipped: needs PostgreSQL; run scripts/bench-cluster.sh, or give --cluster-database postgres://… (an empty database only the bench uses)"

// benchClusterResult is what the cluster phase measured: the cost of a non-owner's hop
// (API and CDP) and create throughput with 1 and 3 nodes.
type benchClusterResult struct {
	skipped  string               // why the phase did not run ("" when it ran)
	api      map[string]*benchPct // by benchClusterAPIPaths' name: latency, µs
	apiRPS   map[string][]float64 // per round, req/s
	added    map[string][]float64 // by path name, per round: non-owner p50 − owner p50, µs
	cdpOwner benchPct             // Runtime.evaluate round trip over connectUrl at the owner, µs
	cdpPeer  benchPct             // … at a non-owner (the websocket is proxied), µs
	cdpAdded []float64            // per round: p50 difference, µs
	creates  [2]benchClusterCreates
	conc     int // clients of the creates
	apiConc  int // clients of GET /v1/sessions/{id}
	ran      bool
}

// benchClusterCreates is one create throughput configuration (1 or 3 nodes).
type benchClusterCreates struct {
	nodes  int
	lat    benchPct  // POST → 201, ms
	rate   []float64 // per round: creates/s, first POST to the last 201
	landed map[string]int
	total  int
}

// benchLogsConc is the clients of GET …/logs: a server reads at most
// httpapi.DefaultMaxArtifactReads logs at once and answers 503 beyond, and a client's
// next request may arrive before the slot of its last one is free.
const benchLogsConc = httpapi.DefaultMaxArtifactReads / 2

// benchClusterAPIPaths are the API requests compared at the owner and at a non-owner;
// conc 0 is --api-conc.
var benchClusterAPIPaths = []struct {
	name, suffix string
	conc         int
}{
	{"GET /v1/sessions/{id}", "", 0},
	{"GET /v1/sessions/{id}, 1 client,", "", 1}, // the hop alone, without queueing on the 2 cores
	{"GET /v1/sessions/{id}/logs", "/logs", benchLogsConc},
}

// benchNode is one node of the bench's cluster.
type benchNode struct {
	*benchServer
	id, label, host string
}

// startClusterNode starts node i of the cluster on database, with the cluster's API key.
func (r *benchRun) startClusterNode(ctx context.Context, i int, key string) (*benchNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := ln.Addr().String()
	ln.Close() // the node listens on it again: a free port, known before it starts (its --cluster-url)
	dir := filepath.Join(r.tmp, "cluster", strconv.Itoa(i))
	chromePath := r.bare.path
	s, err := startBenchServer(ctx, benchServerConfig{
		dataDir: dir, chromePath: chromePath, poolSize: r.cfg.poolSize, maxLaunches: r.cfg.maxLaunches,
		maxSessions: r.cfg.clusterConc + r.cfg.poolSize + 8, log: r.log, version: r.version, key: key,
		extraArgs: append([]string{"--addr", host, "--database", r.cfg.clusterDB, "--cluster-url", "http://" + host},
			r.cfg.serverArgs...),
	})
	if err != nil {
		return nil, err
	}
	id, err := os.ReadFile(filepath.Join(dir, "node-id"))
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	return &benchNode{benchServer: s, id: strings.TrimSpace(string(id)), label: fmt.Sprintf("node%d", i+1), host: host}, nil
}

// waitMembers waits until the store lists want active nodes, and then two heartbeats
// more, so that every node has read every other (and their warm pools).
func waitMembers(ctx context.Context, n *benchNode, want int) error {
	ns, ok := n.main.DB.(bb.NodeStore)
	if !ok {
		return errors.New("the cluster's store keeps no nodes (is --cluster-database PostgreSQL?)")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		nodes, err := ns.Nodes(ctx)
		active := 0
		for _, x := range nodes {
			if x.State == bb.NodeActive {
				active++
			}
		}
		if err == nil && active == want {
			break
		}
		if active > want {
			return fmt.Errorf("the database lists %d active nodes, the bench started %d: give an empty database", active, want)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d nodes active (%v): %w", active, want, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	select { // the membership loop's period is 2 s
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(4500 * time.Millisecond):
		return nil
	}
}

// clusterPhase starts one node on --cluster-database, measures create throughput on it,
// starts two more and measures create throughput with three (creates sent round-robin
// to every node), then compares API calls and CDP round trips about one session sent to
// its owner and to a non-owner.
func (r *benchRun) clusterPhase(ctx context.Context) error {
	res := &r.cluster
	res.conc, res.apiConc = r.cfg.clusterConc, r.cfg.apiConc
	if r.cfg.clusterDB == "" {
		res.skipped = benchClusterHowTo
		r.logf("cluster: %s", benchClusterHowTo)
		return nil
	}
	res.ran = true
	key := "bb_bench_" + benchRandomHex(16)
	var nodes []*benchNode
	defer func() {
		for _, n := range nodes {
			if err := n.close(); err != nil {
				r.logf("close cluster %s: %v", n.label, err)
			}
		}
	}()
	for i, want := range []int{1, benchClusterNodes} {
		for len(nodes) < want {
			n, err := r.startClusterNode(ctx, len(nodes), key)
			if err != nil {
				return fmt.Errorf("start cluster node %d: %w", len(nodes)+1, err)
			}
			nodes = append(nodes, n)
		}
		if err := waitMembers(ctx, nodes[0], want); err != nil {
			return err
		}
		if err := r.clusterCreates(ctx, nodes, &res.creates[i]); err != nil {
			return fmt.Errorf("creates on %d nodes: %w", want, err)
		}
	}
	return r.clusterHops(ctx, nodes)
}

// clusterCreates sends clusterCreates creates from clusterConc clients, each create
// followed by its release, round-robin to nodes, heavyRounds times.
func (r *benchRun) clusterCreates(ctx context.Context, nodes []*benchNode, res *benchClusterCreates) error {
	res.nodes, res.landed = len(nodes), map[string]int{}
	label := map[string]string{}
	for _, n := range nodes {
		label[n.id] = n.label
	}
	for round := range r.cfg.heavyRounds {
		for _, n := range nodes {
			if err := n.waitPoolFull(ctx); err != nil {
				return err
			}
		}
		var (
			next atomic.Int64
			mu   sync.Mutex
			lat  []time.Duration
			ids  []string
			errs []error
			wg   sync.WaitGroup
		)
		t0 := time.Now()
		for range r.cfg.clusterConc {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= r.cfg.clusterCreates {
						return
					}
					n := nodes[i%len(nodes)]
					s, d, err := n.create(ctx, `{}`)
					if err == nil {
						err = n.release(ctx, s.ID)
					}
					mu.Lock()
					if s.ID != "" {
						ids = append(ids, s.ID)
					}
					if err != nil {
						errs = append(errs, err)
					} else {
						lat = append(lat, d)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(t0)
		for _, id := range ids { // where they landed, and wait until their browsers are gone
			s, err := nodes[0].main.DB.Session(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			res.landed[cmp.Or(label[s.NodeID], "other:"+s.NodeID)]++
			if s.PID > 0 {
				errs = append(errs, chrome.WaitGroupGone(ctx, s.PID))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		res.total += len(lat)
		res.lat.add(lat, time.Millisecond)
		res.rate = append(res.rate, float64(len(lat))/elapsed.Seconds())
		r.logf("cluster creates on %d nodes, round %d: %d in %.1f s (%.2f/s), p50 %.0f ms", len(nodes), round+1,
			len(lat), elapsed.Seconds(), res.rate[round], res.lat.p50[round])
	}
	return nil
}

// clusterHops creates a session and sends the same API calls and CDP round trips about
// it to its owner and to a non-owner, interleaved, rounds times.
func (r *benchRun) clusterHops(ctx context.Context, nodes []*benchNode) error {
	for _, n := range nodes {
		if err := n.waitPoolFull(ctx); err != nil {
			return err
		}
	}
	s, _, err := nodes[0].create(ctx, `{}`)
	if err != nil {
		return err
	}
	stored, err := nodes[0].main.DB.Session(ctx, s.ID)
	if err != nil {
		return errors.Join(err, nodes[0].release(context.WithoutCancel(ctx), s.ID))
	}
	var owner, peer *benchNode
	for _, n := range nodes {
		switch {
		case n.id == stored.NodeID:
			owner = n
		case peer == nil:
			peer = n
		}
	}
	if owner == nil || peer == nil {
		return errors.Join(fmt.Errorf("session %s is on node %q, not one of the bench's", s.ID, stored.NodeID),
			nodes[0].release(context.WithoutCancel(ctx), s.ID))
	}
	defer func() {
		if err := owner.releaseAndWait(context.WithoutCancel(ctx), s.ID, stored.PID); err != nil {
			r.logf("release cluster session: %v", err)
		}
	}()
	if err := owner.waitPoolFull(ctx); err != nil { // no refill during the rounds
		return err
	}
	r.logf("cluster: session on %s, non-owner %s", owner.label, peer.label)
	if err := r.clusterAPI(ctx, s.ID, owner, peer); err != nil {
		return err
	}
	return r.clusterCDP(ctx, s, owner, peer)
}

// clusterAPI measures each API path at the owner and at the non-owner, apiConc clients
// for apiDur each, in a rotating order.
func (r *benchRun) clusterAPI(ctx context.Context, id string, owner, peer *benchNode) error {
	res := &r.cluster
	res.api, res.apiRPS, res.added = map[string]*benchPct{}, map[string][]float64{}, map[string][]float64{}
	type target struct {
		name string
		g    *benchGetter
		conc int
	}
	var targets []target
	for _, p := range benchClusterAPIPaths {
		conc := p.conc
		if conc == 0 {
			conc = r.cfg.apiConc
		}
		for _, n := range []struct {
			who string
			n   *benchNode
		}{{"owner", owner}, {"non-owner", peer}} {
			g := n.n.getter(conc, id)
			g.url += p.suffix
			targets = append(targets, target{p.name + " at the " + n.who, g, conc})
			res.api[p.name+" at the "+n.who] = &benchPct{}
			if _, err := g.loop(ctx, conc, time.Now().Add(r.cfg.apiDur/5), nil); err != nil { // warm-up
				return err
			}
		}
	}
	for round := range r.cfg.rounds {
		for i := range targets {
			t := targets[(round+i)%len(targets)]
			t0 := time.Now()
			lat, err := t.g.loop(ctx, t.conc, t0.Add(r.cfg.apiDur), nil)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			res.api[t.name].add(lat, time.Microsecond)
			res.apiRPS[t.name] = append(res.apiRPS[t.name], float64(len(lat))/time.Since(t0).Seconds())
		}
		p50 := func(name string) float64 { return res.api[name].p50[round] }
		var line []string
		for _, p := range benchClusterAPIPaths {
			o, n := p50(p.name+" at the owner"), p50(p.name+" at the non-owner")
			res.added[p.name] = append(res.added[p.name], n-o)
			line = append(line, fmt.Sprintf("%s p50 owner %.0f µs, non-owner %.0f µs", p.name, o, n))
		}
		r.logf("cluster api round %d: %s", round+1, strings.Join(line, "; "))
	}
	return nil
}

// clusterCDP measures Runtime.evaluate round trips over the session's connectUrl dialled
// at the owner and at the non-owner, one connection at a time, in a rotating order.
func (r *benchRun) clusterCDP(ctx context.Context, s client.Session, owner, peer *benchNode) error {
	res := &r.cluster
	eval := []byte(`{"expression":"1"}`)
	at := func(n *benchNode) (string, error) {
		u, err := url.Parse(s.ConnectURL)
		if err != nil {
			return "", err
		}
		u.Host = n.host
		return u.String(), nil
	}
	measure := func(n *benchNode) ([]time.Duration, error) {
		u, err := at(n)
		if err != nil {
			return nil, err
		}
		c, err := benchDial(ctx, u)
		if err != nil {
			return nil, err
		}
		defer c.close()
		sid, err := c.attachPage(ctx)
		if err != nil {
			return nil, err
		}
		for range r.cfg.rttWarmup {
			if _, err := c.callRaw(ctx, sid, "Runtime.evaluate", eval); err != nil {
				return nil, err
			}
		}
		out := make([]time.Duration, 0, r.cfg.rttCalls)
		for range r.cfg.rttCalls {
			t := time.Now()
			if _, err := c.callRaw(ctx, sid, "Runtime.evaluate", eval); err != nil {
				return nil, err
			}
			out = append(out, time.Since(t))
		}
		return out, nil
	}
	for round := range r.cfg.rounds {
		order := []*benchNode{owner, peer}
		if round%2 == 1 {
			order = []*benchNode{peer, owner}
		}
		got := map[*benchNode][]time.Duration{}
		for _, n := range order {
			lat, err := measure(n)
			if err != nil {
				return fmt.Errorf("CDP at %s: %w", n.label, err)
			}
			got[n] = lat
		}
		res.cdpOwner.add(got[owner], time.Microsecond)
		res.cdpPeer.add(got[peer], time.Microsecond)
		res.cdpAdded = append(res.cdpAdded, res.cdpPeer.p50[round]-res.cdpOwner.p50[round])
		r.logf("cluster cdp round %d: evaluate p50 owner %.0f µs, non-owner %.0f µs", round+1,
			res.cdpOwner.p50[round], res.cdpPeer.p50[round])
	}
	return nil
}
