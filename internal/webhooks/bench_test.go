package webhooks_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/sqlite"
)

// BenchmarkDeliveryLatency measures one event from Emit to a verified receipt at a
// local receiver, on real SQLite: the outbox write, the claim, signing and the POST.
// It reports p50 and p90 besides the mean (ns/op).
//
//	go test -run '^$' -bench DeliveryLatency -benchtime 200x ./internal/webhooks
func BenchmarkDeliveryLatency(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "browserd.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	pid := project(b, st)
	rcv := newReceiver(b)
	s := start(b, fastConfig(st))
	endpoint := rcv.srv.URL
	_, secret, err := s.CreateWebhook(b.Context(), pid, bb.WebhookRequest{Endpoint: &endpoint, EventTypes: []bb.EventType{bb.EventSessionEnded}})
	if err != nil {
		b.Fatal(err)
	}
	rcv.set(secret, false)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s.Emit(ended(pid))
		select {
		case <-rcv.got:
		case <-time.After(time.Minute):
			b.Fatal("no delivery")
		}
		lat = append(lat, time.Since(start))
		<-rcv.header
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
}
