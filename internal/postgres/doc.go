// Package postgres is the PostgreSQL implementation of bb.Store, for state that outlives
// one machine: several browserd nodes (or a node and `browserd admin`) share one
// database. It uses github.com/jackc/pgx/v5 through a pgxpool.
//
// Every limit a query enforces holds across processes, not only within one: a session
// insert locks its project's row (SELECT … FOR UPDATE) before it counts the project's
// live sessions; read-modify-write updates lock the row they change; context names are
// unique through an index. The schema is created and upgraded at Open by the embedded,
// numbered migrations in migrations/, under a PostgreSQL advisory lock, so that nodes
// starting together apply each migration once.
//
// DB is also the cluster's bb.NodeStore (node.go): the members' rows, with times from the
// database's clock, and ExpireNodes as one UPDATE … RETURNING, so that of several
// survivors expiring at once exactly one gets each lost node.
//
// A database that cannot be reached (stopped, restarting, out of connections) makes
// every call fail with bb.CodeUnavailable and Retry (the API answers 503); the pool
// reconnects by itself once it is back. The password of the connection URL never
// appears in an error or a log line (Redact).
package postgres
