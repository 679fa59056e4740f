package artifacts

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"

	bb "github.com/browserd/browserd"
)

// recordingChunk names the n-th chunk of a session's recording; the zero padding
// keeps the keys in write order.
func recordingChunk(sessionID string, n int) string {
	return fmt.Sprintf("%srecording/%010d.json", blobPrefix(sessionID), n)
}

// addRecording stores a batch of a live session's rrweb events as one chunk. Past
// RecordingLimit it stores one custom event saying so, then drops the rest.
func (a *Service) addRecording(r *run, events []bb.RecordingEvent) {
	if len(events) == 0 {
		return
	}
	r.recMu.Lock()
	defer r.recMu.Unlock()
	if r.recLimited {
		return
	}
	body, err := json.Marshal(events)
	if err != nil { // events come decoded from JSON: they encode
		a.log.Error("encode recording", "session_id", r.id, "err", err)
		return
	}
	if r.recBytes+int64(len(body)) > a.cfg.RecordingLimit {
		r.recLimited = true
		data, _ := json.Marshal(map[string]any{ // a literal map of plain values encodes
			"tag":     "browserd.recordingLimitReached",
			"payload": map[string]any{"limitBytes": a.cfg.RecordingLimit},
		})
		ev := []bb.RecordingEvent{{Type: bb.RRWebCustom, Timestamp: time.Now().UnixMilli(), Data: data}}
		body, _ = json.Marshal(ev) // as above
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	key := recordingChunk(r.id, r.recSeq)
	if _, err := a.cfg.Blobs.Put(ctx, key, bytes.NewReader(body)); err != nil {
		a.log.Error("store recording", "session_id", r.id, "err", err)
		return
	}
	r.noteBlob(key, int64(len(body)))
	r.recSeq++
	r.recBytes += int64(len(body))
}

// Recording returns a session's rrweb events in time order (GET
// /v1/sessions/{id}/recording). Sessions created with recordSession:false, and
// sessions whose artifacts expired, give CodeUnprocessable; those errors come at once,
// and errors reading the chunks come as the sequence's last element.
//
// The sequence merges the stored chunks rather than loading them all: a chunk is read
// into memory when the merge reaches its first event and dropped after its last, so a
// reader holds only the chunks whose time spans overlap (normally one or two; at worst,
// when a page's clock jumps, the whole recording, which RecordingLimit bounds).
func (a *Service) Recording(ctx context.Context, projectID, id string) (iter.Seq2[bb.RecordingEvent, error], error) {
	s, err := a.session(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if !s.Settings.RecordSessionEnabled(a.cfg.RecordByDefault) {
		return nil, bb.Errorf(bb.CodeUnprocessable, "Recording is not available: the session was created with recordSession: false")
	}
	if err := a.checkPurged(ctx, id, "recording"); err != nil {
		return nil, err
	}
	chunks, err := a.cfg.Blobs.List(ctx, blobPrefix(id)+"recording/")
	if err != nil {
		return nil, fmt.Errorf("list recording of session %s: %w", id, err)
	}
	return func(yield func(bb.RecordingEvent, error) bool) {
		if err := a.mergeChunks(ctx, chunks, yield); err != nil {
			yield(bb.RecordingEvent{}, err)
		}
	}, nil
}

// chunkCursor is a chunk in the merge: its events sorted by time, and the next one.
type chunkCursor struct {
	n   int // the chunk's place in write order, which breaks ties
	evs []bb.RecordingEvent
	pos int
}

func (c *chunkCursor) ts() int64 { return c.evs[c.pos].Timestamp }

// cursorHeap orders chunk cursors by their next event: time, then write order, which
// gives the order of a stable sort of all events by time.
type cursorHeap []*chunkCursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	if h[i].ts() != h[j].ts() {
		return h[i].ts() < h[j].ts()
	}
	return h[i].n < h[j].n
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*chunkCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}

// mergeChunks yields the events of chunks (in write order) as one stable sort by time
// would order them. It stops when yield returns false.
func (a *Service) mergeChunks(ctx context.Context, chunks []bb.BlobInfo, yield func(bb.RecordingEvent, error) bool) error {
	// First pass: each chunk's earliest event, decoding only the timestamps.
	type start struct {
		n  int
		ts int64
	}
	var starts []start
	for n, c := range chunks {
		ts, ok, err := a.chunkStart(ctx, c.Key)
		if err != nil {
			return err
		}
		if ok {
			starts = append(starts, start{n, ts})
		}
	}
	slices.SortStableFunc(starts, func(x, y start) int { return cmp.Compare(x.ts, y.ts) })
	h := &cursorHeap{}
	for next := 0; ; {
		// A chunk joins the merge before any event at or after its first one is yielded.
		for next < len(starts) && (h.Len() == 0 || starts[next].ts <= (*h)[0].ts()) {
			evs, err := a.readChunk(ctx, chunks[starts[next].n].Key)
			if err != nil {
				return err
			}
			if len(evs) > 0 {
				slices.SortStableFunc(evs, func(x, y bb.RecordingEvent) int { return cmp.Compare(x.Timestamp, y.Timestamp) })
				heap.Push(h, &chunkCursor{n: starts[next].n, evs: evs})
			}
			next++
		}
		if h.Len() == 0 {
			return nil
		}
		c := (*h)[0]
		ev := c.evs[c.pos]
		c.evs[c.pos] = bb.RecordingEvent{} // the yielded event is the caller's to keep or drop
		if c.pos++; c.pos == len(c.evs) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
		if !yield(ev, nil) {
			return nil
		}
	}
}

// chunkStart returns the earliest timestamp of a chunk; ok is false when it is empty.
func (a *Service) chunkStart(ctx context.Context, key string) (ts int64, ok bool, err error) {
	body, err := a.readBlob(ctx, key)
	if err != nil {
		return 0, false, err
	}
	var evs []struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &evs); err != nil {
		return 0, false, fmt.Errorf("decode %s: %w", key, err)
	}
	for i, e := range evs {
		if i == 0 || e.Timestamp < ts {
			ts = e.Timestamp
		}
	}
	return ts, len(evs) > 0, nil
}

func (a *Service) readBlob(ctx context.Context, key string) ([]byte, error) {
	r, err := a.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer r.Close()
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return body, nil
}

func (a *Service) readChunk(ctx context.Context, key string) ([]bb.RecordingEvent, error) {
	body, err := a.readBlob(ctx, key)
	if err != nil {
		return nil, err
	}
	var evs []bb.RecordingEvent
	if err := json.Unmarshal(body, &evs); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return evs, nil
}
