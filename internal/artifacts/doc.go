// Package artifacts keeps what sessions leave behind besides their end record: the CDP
// logs the gateway saw (spec §2.6), rrweb recordings (§2.7), downloads (§3.6) and uploads
// (§3.9), and deletes them when their retention expires. Its Service serves the
// artifact endpoints of internal/httpapi and tells the CDP gateway (internal/cdpproxy)
// where a live session's files are; the Manager calls it at the start and end of every
// session.
package artifacts
