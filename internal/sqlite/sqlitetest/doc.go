// Package sqlitetest gives tests a migrated SQLite store and quick fixtures.
package sqlitetest
