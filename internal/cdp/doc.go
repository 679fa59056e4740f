// Package cdp is where browserd speaks the Chrome DevTools Protocol: the one client
// of a DevTools websocket (Dial, Call, Send, events, Close) and of the DevTools HTTP
// endpoints (/json/version, /json/list), used by cdpagent, recorder, liveview, chrome,
// the bench and the tests.
//
// It knows the protocol's shape (commands, answers, events, flattened target sessions
// named by sessionId) and nothing of any domain's methods. It imports only the standard
// library and github.com/coder/websocket.
package cdp
