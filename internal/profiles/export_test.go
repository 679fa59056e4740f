package profiles

// Internals exported to the external tests (package profiles_test) only.
var (
	WriteSnapshotForTest = writeSnapshot
	ReadSnapshotForTest  = readSnapshot
)
