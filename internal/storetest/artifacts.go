package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testArtifacts checks the bb.ArtifactStore contract: logs round-trip in order per
// session, and retention selects and purges only ended sessions' artifacts.
func testArtifacts(t *testing.T, st bb.Store) {
	as, ok := st.(bb.ArtifactStore)
	if !ok {
		t.Skipf("%T does not implement bb.ArtifactStore", st)
	}
	ctx := t.Context()
	p := newProject(t, st, bigLimit)
	a := createSession(t, st, newSession(p, base))
	b := createSession(t, st, newSession(p, base.Add(time.Second)))

	if got, err := as.SessionLogs(ctx, a.ID, 0, 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("SessionLogs(no logs) = %#v, %v; want an empty non-nil slice", got, err)
	}
	msg := func(body, raw string, at time.Time) *bb.LogMessage {
		return &bb.LogMessage{Body: json.RawMessage(body), Raw: raw, Timestamp: at}
	}
	first := []bb.SessionLog{
		{SessionID: a.ID, Method: "Target.getTargets", PageID: 0,
			Request:  msg(`{}`, `{"id":1,"method":"Target.getTargets"}`, base),
			Response: msg(`{"targetInfos":[]}`, `{"id":1,"result":{"targetInfos":[]}}`, base.Add(3*time.Millisecond))},
		{SessionID: b.ID, Method: "Browser.close", Request: msg(`{}`, `{"id":9,"method":"Browser.close"}`, base)},
		{SessionID: a.ID, Method: "Page.navigate", PageID: 1, CDPSessionID: "S1", FrameID: "F1", LoaderID: "L1",
			Request:  msg(`{"url":"https://example.com/é"}`, `{"id":2,"method":"Page.navigate","params":{"url":"https://example.com/é"},"sessionId":"S1"}`, base.Add(time.Second)),
			Response: msg(`{"frameId":"F1","loaderId":"L1"}`, `{"id":2,"result":{"frameId":"F1","loaderId":"L1"}}`, base.Add(2*time.Second))},
	}
	if err := as.AppendSessionLogs(ctx, first); err != nil {
		t.Fatalf("AppendSessionLogs: %v", err)
	}
	second := []bb.SessionLog{{SessionID: a.ID, Method: "Runtime.evaluate", PageID: 1, CDPSessionID: "S1",
		Request: msg(`{"browserdTruncated":true,"size":100000}`, `{"id":3…[truncated by browserd]`, base.Add(3*time.Second))}}
	if err := as.AppendSessionLogs(ctx, second); err != nil {
		t.Fatalf("AppendSessionLogs: %v", err)
	}
	want := []bb.SessionLog{first[0], first[2], second[0]}
	for i := range want {
		want[i].Seq = int64(i + 1)
	}
	rawEqual := cmp.Comparer(func(x, y json.RawMessage) bool { return string(x) == string(y) })
	got, err := as.SessionLogs(ctx, a.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, rawEqual); diff != "" {
		t.Errorf("SessionLogs(a) mismatch (-want +got):\n%s", diff)
	}
	// Paging: pages of limit rows after the last Seq read give the same logs.
	for _, limit := range []int{1, 2} {
		var paged []bb.SessionLog
		for after := int64(0); ; {
			page, err := as.SessionLogs(ctx, a.ID, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("SessionLogs(after %d, limit %d) = %d logs", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(want, paged, rawEqual); diff != "" {
			t.Errorf("SessionLogs in pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	if got, err := as.SessionLogs(ctx, a.ID, 3, 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("SessionLogs(after the last) = %#v, %v; want an empty non-nil slice", got, err)
	}
	if got, err := as.SessionLogs(ctx, b.ID, 0, 10); err != nil || len(got) != 1 || got[0].Response != nil || got[0].Seq != 1 {
		t.Errorf("SessionLogs(b) = %+v, %v; want one log without a response", got, err)
	}
	// A batch naming an unknown session writes nothing.
	bad := []bb.SessionLog{{SessionID: b.ID, Method: "X", Request: msg(`{}`, `{}`, base)}, {SessionID: bb.NewID(), Method: "X"}}
	if err := as.AppendSessionLogs(ctx, bad); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("AppendSessionLogs(unknown session) = %v; want CodeNotFound", err)
	}
	if got, _ := as.SessionLogs(ctx, b.ID, 0, 10); len(got) != 1 {
		t.Errorf("after a failed batch, b has %d logs; want 1", len(got))
	}

	// Retention.
	for _, s := range []*bb.Session{a, b} {
		if err := as.MarkArtifacts(ctx, s.ID, base); err != nil {
			t.Fatalf("MarkArtifacts: %v", err)
		}
	}
	if err := as.MarkArtifacts(ctx, a.ID, base.Add(time.Hour)); err != nil {
		t.Errorf("MarkArtifacts twice: %v", err)
	}
	if err := as.MarkArtifacts(ctx, bb.NewID(), base); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("MarkArtifacts(unknown session) = %v; want CodeNotFound", err)
	}
	c := createSession(t, st, newSession(p, base)) // never marked
	if marked, purged, err := as.ArtifactsState(ctx, c.ID); marked || purged || err != nil {
		t.Errorf("ArtifactsState(unmarked) = %v, %v, %v", marked, purged, err)
	}
	end := func(s *bb.Session, at time.Time) {
		t.Helper()
		if _, err := st.UpdateSession(ctx, s.ID, func(s *bb.Session) error {
			s.Status, s.EndedAt, s.UpdatedAt = bb.StatusCompleted, at, at
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := as.ExpiredArtifacts(ctx, base.Add(48*time.Hour), 10); err != nil || len(ids) != 0 {
		t.Errorf("ExpiredArtifacts(nothing ended) = %v, %v; want none", ids, err)
	}
	end(a, base.Add(time.Hour))
	end(b, base.Add(2*time.Hour))
	end(c, base.Add(time.Hour))
	if ids, err := as.ExpiredArtifacts(ctx, base.Add(90*time.Minute), 10); err != nil || !cmp.Equal(ids, []string{a.ID}) {
		t.Errorf("ExpiredArtifacts(90m) = %v, %v; want [a]", ids, err)
	}
	if ids, err := as.ExpiredArtifacts(ctx, base.Add(48*time.Hour), 1); err != nil || !cmp.Equal(ids, []string{a.ID}) {
		t.Errorf("ExpiredArtifacts(limit 1) = %v, %v; want [a] (oldest first)", ids, err)
	}
	if err := as.PurgeArtifacts(ctx, a.ID, base.Add(49*time.Hour)); err != nil {
		t.Fatalf("PurgeArtifacts: %v", err)
	}
	if got, err := as.SessionLogs(ctx, a.ID, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("logs after purge = %d, %v; want none", len(got), err)
	}
	if got, _ := as.SessionLogs(ctx, b.ID, 0, 10); len(got) != 1 {
		t.Errorf("purging a touched b's logs: %d left; want 1", len(got))
	}
	if marked, purged, err := as.ArtifactsState(ctx, a.ID); !marked || !purged || err != nil {
		t.Errorf("ArtifactsState(purged) = %v, %v, %v; want marked and purged", marked, purged, err)
	}
	if marked, purged, err := as.ArtifactsState(ctx, b.ID); !marked || purged || err != nil {
		t.Errorf("ArtifactsState(b) = %v, %v, %v; want marked, not purged", marked, purged, err)
	}
	if ids, err := as.ExpiredArtifacts(ctx, base.Add(48*time.Hour), 10); err != nil || !cmp.Equal(ids, []string{b.ID}) {
		t.Errorf("ExpiredArtifacts after purge = %v, %v; want [b]", ids, err)
	}
}
