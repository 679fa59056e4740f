// Package recorder is browserd's own CDP client in each session's browser. At session
// start it points the browser's downloads at the session's directory and, for recorded
// sessions, injects the rrweb recorder (rrweb-record.js, built by scripts/rrweb/build.sh
// from the pinned npm package) into every page and tab, in an isolated world, and
// collects its events through a CDP binding. It implements browserd.Agent.
package recorder
