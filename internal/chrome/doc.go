// Package chrome launches and stops headless Chromium processes, one per session, and
// implements bb.Launcher and bb.Browser.
//
// Every browser gets its own directory under Config.RunDir (user data, temp files,
// downloads) and its own process group, so that stopping it (SIGTERM, then SIGKILL of the
// group) and removing the directory leaves nothing behind. The flags follow
// shared/research/chromium-limits.md §2 and §6; the traps it lists (leaked
// /tmp/org.chromium.Chromium.* dirs, lingering zygotes, a blocked stderr pipe) are handled
// here.
package chrome
