// Package cdpproxy is the authenticated CDP websocket gateway: it serves a session's
// connectUrl (spec/API.md §4.1), authenticates the upgrade against the session Manager,
// and relays the client's websocket to the session's browser-level DevTools socket.
//
// The relay is built for latency (research/chromium-limits.md §3d): it does its own
// minimal RFC 6455 handshakes, never negotiates extensions, and pumps frames rather than
// messages, forwarding headers and payloads byte for byte with one goroutine per
// direction. Client text messages are read as Chromium will read them (scan.go: strict
// JSON, escapes decoded, duplicate keys refused), so that Browser.close ends the session
// as COMPLETED and the commands that name files are confined to the session's
// directories (bb.ConfineCDPCommand). Messages up to Config.InspectMessageSize are
// assembled for that; larger ones are streamed and scanned on the way, their last byte
// held back until the scan agrees. Browser messages are never buffered whole. The live
// view's DevTools websockets go through the same relay (Gateway.RelayDevTools).
//
// Connections end with a close frame that says why: 1000 when the session ended
// normally or the client was idle for Config.IdleTimeout (Browserbase closes CDP
// connections after 10 minutes without a command, spec §5.2), 1001 when the gateway
// shuts down, 1011 when the session failed or the browser connection dropped; 1003,
// 1007, 1008 or 1009 when a client message is refused (docs/COMPATIBILITY.md, "What
// browserd inspects in CDP commands").
//
// Wiring: mount the Gateway at the connectUrl's path (httpapi builds
// `/connect?signingKey=…`; the legacy `?apiKey=…&sessionId=…` URLs of older clients
// point at `/`). Connections are hijacked, so http.Server.Shutdown does not see them:
// call Gateway.Shutdown, before the session Manager's Close.
package cdpproxy
