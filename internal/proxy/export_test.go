package proxy

// SyncBuffer lets the external tests (chrome_test.go) log into the same buffer type.
type SyncBuffer = syncBuffer
