// Package cluster keeps this node's membership of a browserd cluster
// (docs/ARCHITECTURE.md "Cluster"): it joins the members' table (bb.NodeStore), renews
// its row every Heartbeat with the node's load, fences the node when it cannot renew
// within its Lease, and marks lost the peers that stopped renewing for TTL, ending their
// sessions in the store. The browsers themselves belong to the Manager (Local); this
// package only decides when they must go.
//
// The timing, with the defaults: a heartbeat every 2 s; a node counts its lease from
// the moment it sent its last successful heartbeat, and kills its browsers when 8 s
// pass without one; its peers count 10 s from the heartbeat's time on the database's
// clock before they mark it lost. As the lease starts before the database stamps the
// heartbeat and is shorter than the TTL, a node's browsers are gone before any peer
// ends their sessions, unless the node's own clock stops (a paused process), in which
// case nothing it runs makes progress either.
package cluster
