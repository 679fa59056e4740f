package liveview

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"time"
)

// Screencast tuning.
const (
	// frameWindow is how many frames may be on their way to a viewer, not yet drawn,
	// before Chromium is made to wait for the viewer's acks: enough to hide one network
	// round trip, few enough that a slow viewer gets fewer frames rather than old ones.
	frameWindow = 2
	minQuality  = 30
	maxQuality  = 85
	// startQuality is Chromium's JPEG quality before the viewer's speed is known
	// (research/chromium-limits.md §4: q60 ≈ 9 KB per 1280×720 frame).
	startQuality = 60
	// slowDraw and fastDraw (ms, a moving average of send-to-drawn times) move the
	// quality down and up; adaptEvery spaces the changes.
	slowDraw   = 250
	fastDraw   = 80
	adaptEvery = 3 * time.Second
)

// startCast starts the screencast of the active tab at the viewer's size and the
// current quality, unless the viewer is hidden or has not said its size.
func (v *viewer) startCast() {
	if v.session == "" || v.paused || v.width == 0 || v.casting {
		return
	}
	err := v.call("Page.startScreencast", map[string]any{
		"format": "jpeg", "quality": v.quality, "maxWidth": v.width, "maxHeight": v.height, "everyNthFrame": 1,
	}, nil)
	if err != nil {
		v.log.Debug("start screencast failed", "err", err)
		return
	}
	v.casting = true
}

// stopCast stops the screencast and forgets the frames in flight. Held acks are sent
// first: a restarted screencast must not wait for frames that will never be acked.
func (v *viewer) stopCast() {
	if v.casting {
		for _, id := range v.held {
			v.ackChromium(id)
		}
		if err := v.call("Page.stopScreencast", nil, nil); err != nil {
			v.log.Debug("stop screencast failed", "err", err)
		}
		v.casting = false
	}
	v.frameMu.Lock()
	v.frame = nil
	v.frameMu.Unlock()
	v.inFlight, v.held = 0, nil
	clear(v.sentAt)
}

func (v *viewer) restartCast() {
	v.stopCast()
	v.startCast()
}

// onFrame forwards a frame as one binary message: a 4-byte big-endian length, that
// many bytes of JSON {seq, metadata}, then the JPEG.
func (v *viewer) onFrame(params json.RawMessage) {
	var f struct {
		Data      string          `json:"data"`
		Metadata  json.RawMessage `json:"metadata"`
		SessionID int             `json:"sessionId"`
	}
	if err := json.Unmarshal(params, &f); err != nil {
		return
	}
	jpeg, err := base64.StdEncoding.DecodeString(f.Data)
	if err != nil {
		v.ackChromium(f.SessionID)
		return
	}
	v.seq++
	meta, _ := json.Marshal(struct { // a struct of a number and valid JSON always encodes
		Seq      int64           `json:"seq"`
		Metadata json.RawMessage `json:"metadata"`
	}{v.seq, f.Metadata})
	buf := make([]byte, 4+len(meta)+len(jpeg))
	binary.BigEndian.PutUint32(buf, uint32(len(meta)))
	copy(buf[4:], meta)
	copy(buf[4+len(meta):], jpeg)

	v.frameMu.Lock()
	dropped := v.frame
	v.frame = &outFrame{seq: v.seq, data: buf}
	v.frameMu.Unlock()
	select {
	case v.frameSig <- struct{}{}:
	default:
	}
	v.frames++
	v.sentAt[v.seq] = time.Now()
	v.inFlight++
	if v.inFlight <= frameWindow {
		v.ackChromium(f.SessionID)
	} else {
		v.held = append(v.held, f.SessionID)
	}
	if dropped != nil {
		v.drawnFrame(dropped.seq, false)
	}
}

func (v *viewer) ackChromium(frame int) {
	// Fire and forget: an ack that fails belongs to a screencast that stopped.
	_ = v.cdp.start(v.ctx, v.session, "Page.screencastFrameAck", map[string]any{"sessionId": frame}, "")
}

// drawnFrame notes that the viewer drew (or never got) frame seq, and lets Chromium
// send another when it was waiting for this one.
func (v *viewer) drawnFrame(seq int64, drawn bool) {
	at, ok := v.sentAt[seq]
	if !ok {
		return
	}
	delete(v.sentAt, seq)
	if drawn {
		ms := float64(time.Since(at)) / float64(time.Millisecond)
		if v.drawMS == 0 {
			v.drawMS = ms
		} else {
			v.drawMS = 0.8*v.drawMS + 0.2*ms
		}
		v.drawn++
	}
	v.inFlight--
	if len(v.held) > 0 {
		next := v.held[0]
		v.held = v.held[1:]
		v.ackChromium(next)
	}
}

// adapt lowers the JPEG quality when frames take long to reach the viewer and raises it
// again when they are fast.
func (v *viewer) adapt() {
	if !v.casting || time.Since(v.adaptedAt) < adaptEvery || v.drawn < 5 {
		return
	}
	q := v.quality
	switch {
	case v.drawMS > slowDraw:
		q = max(minQuality, q-15)
	case v.drawMS < fastDraw:
		q = min(maxQuality, q+10)
	}
	if q != v.quality {
		v.log.Debug("screencast quality", "quality", q, "draw_ms", int(v.drawMS))
		v.quality = q
		v.adaptedAt, v.drawn = time.Now(), 0
		v.restartCast()
	}
}
