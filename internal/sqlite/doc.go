// Package sqlite is the SQLite implementation of bb.Store, the default store of a
// single-machine browserd. It uses modernc.org/sqlite (pure Go, no cgo).
//
// The file is opened in WAL mode through two pools: one connection for writes, whose
// transactions start with BEGIN IMMEDIATE so that a read-check-write (the concurrency
// limit of CreateSession, UpdateSession) can't race another writer, even one in another
// process, and a pool of read-only connections for everything else. The schema is
// created and upgraded by the embedded, numbered migrations in migrations/.
package sqlite
