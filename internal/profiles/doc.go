// Package profiles keeps what a session may start from and take back: contexts
// (encrypted snapshots of a Chromium profile, snapshot.go) and extensions (checked
// zips, extzip.go), in a blob store with their records in the session store.
//
// A Service serves the contexts and extensions endpoints (spec §6.1-6.7; httpapi takes
// it as Config.Profiles) and is also a browserd.SessionPart: for a session that names a
// context or an extension it restores the profile and unpacks the extension before the
// browser launches, and writes the profile back once the browser has stopped (part.go).
//
// The package imports the root browserd and the standard library only.
package profiles
