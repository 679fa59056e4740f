// Package storetest is the contract test suite of bb.Store: every implementation
// (internal/sqlite, internal/postgres) runs Run from its own tests and must pass it.
//
// The suite only reads what it wrote (it filters by its own projects and by random node
// ids), so an implementation may run it against a shared database.
package storetest
