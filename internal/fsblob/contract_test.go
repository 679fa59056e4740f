package fsblob_test

import (
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/blobtest"
	"github.com/browserd/browserd/internal/fsblob"
)

// TestContract runs the blob contract suite on the local disk.
func TestContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) bb.BlobStore {
		s, err := fsblob.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, blobtest.Options{})
}
