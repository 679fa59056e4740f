// Package webdriver serves a session's seleniumRemoteUrl (spec/API.md §2.3, §4.2): a W3C
// WebDriver endpoint that drives the session's already-running Chromium through Debian's
// chromedriver, attached with goog:chromeOptions.debuggerAddress. A session can be driven
// by Selenium and by CDP clients (connectUrl) at the same time, and keeps the settings it
// was created with.
//
// Every request is authenticated by header, in one of the two styles Browserbase clients
// use: `x-bb-signing-key: <signingKey>`, or `x-bb-api-key: <API key>` with
// `session-id: <session id>`. POST /session attaches to the browserd session (it then
// counts as connected, like a CDP client) and starts one chromedriver per browserd session
// on a free loopback port, or reuses it; every other command is reverse-proxied to that
// chromedriver. DELETE /session/{id} (driver.quit()) ends the browserd session as
// COMPLETED. A chromedriver never outlives its browserd session, the Handler, or a
// crash of browserd (its own process group, SIGKILL on parent death). The choices the spec
// leaves open (capabilities, errors, idle WebDriver sessions) are in docs/COMPATIBILITY.md.
//
// Wiring: mount the Handler at Config.Prefix ("/webdriver/") and call Shutdown before
// the session Manager's Close.
package webdriver
