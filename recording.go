package browserd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// rrweb event types (spec §2.7).
const (
	RRWebFullSnapshot        = 2
	RRWebIncrementalSnapshot = 3
	RRWebMeta                = 4
	RRWebCustom              = 5
)

// recordingChunk names the n-th chunk of a session's recording; the zero padding
// keeps the keys in write order.
func recordingChunk(sessionID string, n int) string {
	return fmt.Sprintf("%srecording/%010d.json", blobPrefix(sessionID), n)
}

// addRecording stores a batch of a live session's rrweb events as one chunk. Past
// RecordingLimit it stores one custom event saying so, then drops the rest.
func (a *Artifacts) addRecording(la *liveArtifacts, events []RecordingEvent) {
	if len(events) == 0 {
		return
	}
	la.recMu.Lock()
	defer la.recMu.Unlock()
	if la.recLimited {
		return
	}
	body, err := json.Marshal(events)
	if err != nil { // events come decoded from JSON: they encode
		a.log.Error("encode recording", "session_id", la.id, "err", err)
		return
	}
	if la.recBytes+int64(len(body)) > a.cfg.RecordingLimit {
		la.recLimited = true
		data, _ := json.Marshal(map[string]any{ // a literal map of plain values encodes
			"tag":     "browserd.recordingLimitReached",
			"payload": map[string]any{"limitBytes": a.cfg.RecordingLimit},
		})
		ev := []RecordingEvent{{Type: RRWebCustom, Timestamp: time.Now().UnixMilli(), Data: data}}
		body, _ = json.Marshal(ev) // as above
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	key := recordingChunk(la.id, la.recSeq)
	if _, err := a.cfg.Blobs.Put(ctx, key, bytes.NewReader(body)); err != nil {
		a.log.Error("store recording", "session_id", la.id, "err", err)
		return
	}
	la.recSeq++
	la.recBytes += int64(len(body))
}

// Recording returns a session's rrweb events in time order (GET
// /v1/sessions/{id}/recording). Sessions created with recordSession:false, and
// sessions whose artifacts expired, give CodeUnprocessable.
func (a *Artifacts) Recording(ctx context.Context, projectID, id string) ([]RecordingEvent, error) {
	s, err := a.session(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if !s.Settings.RecordSessionEnabled(a.cfg.RecordByDefault) {
		return nil, Errorf(CodeUnprocessable, "Recording is not available: the session was created with recordSession: false")
	}
	if err := a.checkPurged(ctx, id, "recording"); err != nil {
		return nil, err
	}
	chunks, err := a.cfg.Blobs.List(ctx, blobPrefix(id)+"recording/")
	if err != nil {
		return nil, fmt.Errorf("list recording of session %s: %w", id, err)
	}
	events := []RecordingEvent{}
	for _, c := range chunks {
		evs, err := a.readChunk(ctx, c.Key)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	// Chunks are in arrival order; pages (tabs) send theirs independently.
	slices.SortStableFunc(events, func(x, y RecordingEvent) int {
		switch {
		case x.Timestamp < y.Timestamp:
			return -1
		case x.Timestamp > y.Timestamp:
			return 1
		}
		return 0
	})
	return events, nil
}

func (a *Artifacts) readChunk(ctx context.Context, key string) ([]RecordingEvent, error) {
	r, err := a.cfg.Blobs.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer r.Close()
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var evs []RecordingEvent
	if err := json.Unmarshal(body, &evs); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return evs, nil
}
