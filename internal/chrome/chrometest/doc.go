// Package chrometest helps test code that launches browsers: a fake bb.Launcher for fast
// unit tests (also inside testing/synctest bubbles), and helpers that find, start and
// check real Chromium for integration tests.
package chrometest
