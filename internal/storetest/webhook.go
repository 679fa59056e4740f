package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// webhookStore asserts that a store keeps webhooks: both stores must.
func webhookStore(t *testing.T, st bb.Store) bb.WebhookStore {
	t.Helper()
	ws, ok := st.(bb.WebhookStore)
	if !ok {
		t.Fatalf("%T does not implement bb.WebhookStore", st)
	}
	return ws
}

func newWebhook(p *bb.Project, endpoint string, created time.Time, types ...bb.EventType) *bb.Webhook {
	return &bb.Webhook{ID: bb.NewID(), ProjectID: p.ID, Endpoint: endpoint, EventTypes: types,
		Secret: []byte("sealed-secret"), CreatedAt: created, UpdatedAt: created}
}

// testWebhooks checks the webhook CRUD contract: round trip, duplicate endpoints,
// paging newest first, update, delete with its deliveries.
func testWebhooks(t *testing.T, st bb.Store) {
	ws := webhookStore(t, st)
	ctx := t.Context()
	p := newProject(t, st, bigLimit)
	other := newProject(t, st, bigLimit)

	a := newWebhook(p, "https://a.example/hook", base, bb.EventSessionEnded)
	if err := ws.CreateWebhook(ctx, a); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	got, err := ws.Webhook(ctx, a.ID)
	if err != nil {
		t.Fatalf("Webhook: %v", err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("Webhook round trip (-want +got):\n%s", diff)
	}
	dup := newWebhook(p, a.Endpoint, base, bb.EventSessionCreated)
	if err := ws.CreateWebhook(ctx, dup); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateWebhook(same endpoint) = %v; want CodeConflict", err)
	}
	if err := ws.CreateWebhook(ctx, newWebhook(other, a.Endpoint, base, bb.EventSessionEnded)); err != nil {
		t.Errorf("CreateWebhook(same endpoint, other project) = %v; want nil", err)
	}
	if _, err := ws.Webhook(ctx, bb.NewID()); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Webhook(unknown) = %v; want CodeNotFound", err)
	}

	// Paging: five more, newest first; two share a creation time (ordered by id).
	all := []*bb.Webhook{a}
	for i := range 5 {
		at := base.Add(time.Duration(min(i, 3)) * time.Second)
		w := newWebhook(p, "https://b.example/"+string(rune('a'+i)), at, bb.EventSessionCreated, bb.EventSessionEnded)
		if err := ws.CreateWebhook(ctx, w); err != nil {
			t.Fatalf("CreateWebhook: %v", err)
		}
		all = append(all, w)
	}
	var seen []string
	var after *bb.PageCursor
	for range 10 {
		page, err := ws.Webhooks(ctx, p.ID, after, 2)
		if err != nil {
			t.Fatalf("Webhooks: %v", err)
		}
		for _, w := range page {
			seen = append(seen, w.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = &bb.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	want := newestFirst(all)
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("Webhooks pages (-want +got):\n%s", diff)
	}

	up, err := ws.UpdateWebhook(ctx, a.ID, func(w *bb.Webhook) error {
		w.Endpoint = "https://a.example/new"
		w.EventTypes = []bb.EventType{bb.EventSessionRunning}
		w.PreviousSecret, w.PreviousExpiresAt = w.Secret, base.Add(24*time.Hour)
		w.Secret = []byte("rotated")
		w.UpdatedAt = base.Add(time.Minute)
		w.ProjectID = other.ID // ignored
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateWebhook: %v", err)
	}
	got, _ = ws.Webhook(ctx, a.ID)
	if diff := cmp.Diff(up, got); diff != "" || got.ProjectID != p.ID || string(got.PreviousSecret) != "sealed-secret" {
		t.Errorf("after UpdateWebhook: %+v (-returned +stored):\n%s", got, diff)
	}
	if _, err := ws.UpdateWebhook(ctx, a.ID, func(w *bb.Webhook) error { w.Endpoint = all[1].Endpoint; return nil }); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("UpdateWebhook(to a registered endpoint) = %v; want CodeConflict", err)
	}

	ev := &bb.WebhookEvent{ID: bb.NewID(), ProjectID: p.ID, Type: bb.EventSessionRunning, Payload: []byte(`{}`), CreatedAt: base}
	if n, err := ws.EnqueueWebhookEvent(ctx, ev); err != nil || n != 1 {
		t.Fatalf("EnqueueWebhookEvent = %d, %v; want 1 (only a subscribes)", n, err)
	}
	if err := ws.DeleteWebhook(ctx, a.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if err := ws.DeleteWebhook(ctx, a.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("DeleteWebhook again = %v; want CodeNotFound", err)
	}
	if ds, err := ws.WebhookDeliveries(ctx, a.ID, nil, 10); err != nil || len(ds) != 0 {
		t.Errorf("WebhookDeliveries(deleted webhook) = %d, %v; want none", len(ds), err)
	}
	if ds, err := ws.ClaimWebhookDeliveries(ctx, "n", base.Add(time.Hour), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Errorf("ClaimWebhookDeliveries after delete = %d, %v; want none", len(ds), err)
	}
}

// newestFirst returns the ids of ws ordered by (CreatedAt, ID) descending.
func newestFirst(ws []*bb.Webhook) []string {
	type key struct {
		at time.Time
		id string
	}
	ks := make([]key, len(ws))
	for i, w := range ws {
		ks[i] = key{w.CreatedAt, w.ID}
	}
	for i := range ks { // insertion sort: a handful
		for j := i; j > 0 && (ks[j].at.After(ks[j-1].at) || ks[j].at.Equal(ks[j-1].at) && ks[j].id > ks[j-1].id); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.id
	}
	return out
}

// testWebhookOutbox checks the outbox: fan-out to subscribers, idempotent enqueue,
// leases (one claimer at a time, also racing), attempts recorded, paging, purge.
func testWebhookOutbox(t *testing.T, st bb.Store) {
	ws := webhookStore(t, st)
	ctx := t.Context()
	p := newProject(t, st, bigLimit)
	ended := newWebhook(p, "https://x.example/ended", base, bb.EventSessionEnded)
	both := newWebhook(p, "https://x.example/both", base, bb.EventSessionCreated, bb.EventSessionEnded)
	for _, w := range []*bb.Webhook{ended, both} {
		if err := ws.CreateWebhook(ctx, w); err != nil {
			t.Fatalf("CreateWebhook: %v", err)
		}
	}
	ev := func(typ bb.EventType, at time.Time) *bb.WebhookEvent {
		return &bb.WebhookEvent{ID: bb.NewID(), ProjectID: p.ID, Type: typ, Payload: []byte(`{"type":"` + string(typ) + `"}`), CreatedAt: at}
	}
	created := ev(bb.EventSessionCreated, base)
	if n, err := ws.EnqueueWebhookEvent(ctx, created); err != nil || n != 1 {
		t.Fatalf("Enqueue(created) = %d, %v; want 1", n, err)
	}
	end := ev(bb.EventSessionEnded, base.Add(time.Second))
	if n, err := ws.EnqueueWebhookEvent(ctx, end); err != nil || n != 2 {
		t.Fatalf("Enqueue(ended) = %d, %v; want 2", n, err)
	}
	if n, err := ws.EnqueueWebhookEvent(ctx, end); err != nil || n != 0 {
		t.Errorf("Enqueue(ended) again = %d, %v; want 0", n, err)
	}

	// Nothing is due before its time.
	if ds, err := ws.ClaimWebhookDeliveries(ctx, "n1", base.Add(-time.Second), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Errorf("Claim before due = %d, %v; want none", len(ds), err)
	}
	// Racing claimers get each delivery once.
	now := base.Add(2 * time.Second)
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			ds, err := ws.ClaimWebhookDeliveries(ctx, "node"+string(rune('0'+i)), now, time.Minute, 10)
			if err != nil {
				t.Errorf("Claim: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				claimed[d.ID]++
			}
		})
	}
	wg.Wait()
	if len(claimed) != 3 {
		t.Fatalf("racing claims took %d deliveries; want 3", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
	if ds, _ := ws.ClaimWebhookDeliveries(ctx, "n2", now.Add(30*time.Second), time.Minute, 10); len(ds) != 0 {
		t.Errorf("Claim while leased = %d; want none", len(ds))
	}
	// A lease that ran out (its node died) is claimed again.
	again, err := ws.ClaimWebhookDeliveries(ctx, "n2", now.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(again) != 3 {
		t.Fatalf("Claim after lease = %d, %v; want 3", len(again), err)
	}

	// Record: one fails and is retried later, one is delivered.
	var forBoth []*bb.WebhookDelivery
	for _, d := range again {
		if d.WebhookID == both.ID {
			forBoth = append(forBoth, d)
		}
	}
	if len(forBoth) != 2 {
		t.Fatalf("deliveries for %s = %d; want 2", both.ID, len(forBoth))
	}
	at := now.Add(2 * time.Minute)
	fail := bb.WebhookAttempt{At: at, Duration: 15 * time.Millisecond, StatusCode: 503, Error: "HTTP 503"}
	retry := at.Add(10 * time.Second)
	if err := ws.RecordWebhookAttempt(ctx, forBoth[0].ID, fail, bb.DeliveryPending, retry); err != nil {
		t.Fatalf("RecordWebhookAttempt: %v", err)
	}
	ok := bb.WebhookAttempt{At: at, Duration: 3 * time.Millisecond, StatusCode: 204}
	if err := ws.RecordWebhookAttempt(ctx, forBoth[1].ID, ok, bb.DeliveryDelivered, time.Time{}); err != nil {
		t.Fatalf("RecordWebhookAttempt: %v", err)
	}
	if err := ws.RecordWebhookAttempt(ctx, bb.NewID(), ok, bb.DeliveryDelivered, time.Time{}); err != nil {
		t.Errorf("RecordWebhookAttempt(gone) = %v; want nil", err)
	}
	// The failed one is due again at retry (its lease released), not before.
	if ds, _ := ws.ClaimWebhookDeliveries(ctx, "n3", retry.Add(-time.Millisecond), time.Minute, 10); len(ds) != 0 {
		t.Errorf("Claim before retry = %d; want none", len(ds))
	}
	ds, err := ws.ClaimWebhookDeliveries(ctx, "n3", retry, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].ID != forBoth[0].ID {
		t.Fatalf("Claim at retry = %v, %v; want %s", ds, err, forBoth[0].ID)
	}
	if diff := cmp.Diff([]bb.WebhookAttempt{fail}, ds[0].Attempts); diff != "" {
		t.Errorf("claimed attempts (-want +got):\n%s", diff)
	}

	list, err := ws.WebhookDeliveries(ctx, both.ID, nil, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("WebhookDeliveries = %d, %v; want 2", len(list), err)
	}
	if list[0].EventID != end.ID || list[1].EventID != created.ID {
		t.Errorf("WebhookDeliveries order = %s, %s; want ended, then created", list[0].EventType, list[1].EventType)
	}
	byID := map[string]*bb.WebhookDelivery{list[0].ID: list[0], list[1].ID: list[1]}
	done := byID[forBoth[1].ID]
	if done == nil || done.Status != bb.DeliveryDelivered || !done.NextAttemptAt.IsZero() || len(done.Attempts) != 1 ||
		string(done.Payload) != `{"type":"`+string(done.EventType)+`"}` || done.ProjectID != p.ID {
		t.Errorf("delivered delivery = %+v", done)
	}
	page2, err := ws.WebhookDeliveries(ctx, both.ID, &bb.PageCursor{CreatedAt: list[0].CreatedAt, ID: list[0].ID}, 10)
	if err != nil || len(page2) != 1 || page2[0].ID != list[1].ID {
		t.Errorf("WebhookDeliveries(after the first) = %v, %v", page2, err)
	}

	// Purge takes only finished deliveries older than the cut.
	if n, err := ws.PurgeWebhookDeliveries(ctx, base.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeWebhookDeliveries = %d, %v; want 1 (the delivered one)", n, err)
	}
}
