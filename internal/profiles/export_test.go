package browserd

// Internals exported to the external tests (package browserd_test) only.
var (
	WriteSnapshotForTest = writeSnapshot
	ReadSnapshotForTest  = readSnapshot
)
