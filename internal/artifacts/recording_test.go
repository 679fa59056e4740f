package artifacts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// memBlobs is a BlobStore of chunks in memory that counts the opens of each.
type memBlobs struct {
	bb.BlobStore // other methods are not called
	blobs        map[string][]byte
	opens        map[string]int
}

func (m *memBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	b, ok := m.blobs[key]
	if !ok {
		return nil, bb.Errorf(bb.CodeNotFound, "no blob %s", key)
	}
	m.opens[key]++
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) List(ctx context.Context, prefix string) ([]bb.BlobInfo, error) {
	var out []bb.BlobInfo
	for k, b := range m.blobs {
		out = append(out, bb.BlobInfo{Key: k, Size: int64(len(b))})
	}
	slices.SortFunc(out, func(x, y bb.BlobInfo) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// merged runs mergeChunks over chunks stored in memory.
func merged(t *testing.T, chunks [][]bb.RecordingEvent, each func(*memBlobs)) ([]bb.RecordingEvent, error) {
	t.Helper()
	m := &memBlobs{blobs: map[string][]byte{}, opens: map[string]int{}}
	for n, c := range chunks {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		m.blobs[recordingChunk("s", n)] = b
	}
	a := &Service{cfg: Config{Blobs: m}}
	list, _ := m.List(t.Context(), "")
	var got []bb.RecordingEvent
	err := a.mergeChunks(t.Context(), list, func(e bb.RecordingEvent, err error) bool {
		if each != nil {
			each(m)
		}
		got = append(got, e)
		return true
	})
	return got, err
}

// stableSorted is what Recording returned before it streamed: all events, stably sorted
// by time.
func stableSorted(chunks [][]bb.RecordingEvent) []bb.RecordingEvent {
	out := []bb.RecordingEvent{}
	for _, c := range chunks {
		out = append(out, c...)
	}
	slices.SortStableFunc(out, func(x, y bb.RecordingEvent) int { return int(x.Timestamp - y.Timestamp) })
	return out
}

var rawEqual = cmp.Comparer(func(x, y json.RawMessage) bool { return string(x) == string(y) })

// TestMergeChunksHoldsFew: with chunks in time order (one tab, the usual case), the
// merge reads a chunk a second time only when it reaches it.
func TestMergeChunksHoldsFew(t *testing.T) {
	var chunks [][]bb.RecordingEvent
	for c := range 20 {
		var evs []bb.RecordingEvent
		for i := range 5 {
			evs = append(evs, bb.RecordingEvent{Type: 3, Timestamp: int64(100*c + i), Data: json.RawMessage(fmt.Sprintf(`{"c":%d}`, c))})
		}
		chunks = append(chunks, evs)
	}
	maxLoaded := 0
	got, err := merged(t, chunks, func(m *memBlobs) {
		loaded := 0
		for _, n := range m.opens {
			if n == 2 {
				loaded++
			}
		}
		maxLoaded = max(maxLoaded, loaded)
		if loaded > 0 {
			clear(m.opens) // count the loads from here on only
			for k := range m.blobs {
				m.opens[k] = 1
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stableSorted(chunks), got, rawEqual); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if maxLoaded != 1 {
		t.Errorf("up to %d chunks loaded between two events; want 1", maxLoaded)
	}
}

// FuzzMergeChunks: the merge yields what a stable sort of all events by time gives,
// whatever the chunks (times out of order inside and across them, ties, empty chunks).
func FuzzMergeChunks(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0, 9, 9, 0xff, 4, 4, 0xff, 0xff, 1})
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{5, 5, 5, 0xff, 5, 5, 0xff, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		// 0xff ends a chunk; any other byte is an event at that time.
		chunks := [][]bb.RecordingEvent{{}}
		for i, b := range in {
			if b == 0xff {
				chunks = append(chunks, []bb.RecordingEvent{})
				continue
			}
			last := &chunks[len(chunks)-1]
			*last = append(*last, bb.RecordingEvent{Type: 3, Timestamp: int64(b % 8), Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		}
		got, err := merged(t, chunks, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stableSorted(chunks), append([]bb.RecordingEvent{}, got...), rawEqual); diff != "" {
			t.Errorf("merge (-stable sort +got):\n%s", diff)
		}
	})
}
