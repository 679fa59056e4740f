// Package cli is browserd's client commands (browserd sessions|contexts|extensions|
// projects …): flags, tables, --json and exit codes over internal/client. It talks to a
// browserd server, or Browserbase itself, over the v1 API; cmd/browserd dispatches to Run.
package cli
