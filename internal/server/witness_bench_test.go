package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/witness"
)

// BenchmarkAuthorizeHTTPWitnessed is BenchmarkAuthorizeHTTP at 64 clients
// with two real witnesses configured (quorum 2): the witness loop runs
// beside the decisions and should not change their figures.
//
//	go test ./internal/server -run '^$' -bench 'AuthorizeHTTP(Witnessed)?/clients=64' -benchtime 20000x
func BenchmarkAuthorizeHTTPWitnessed(b *testing.B) {
	b.Run("clients=64", func(b *testing.B) {
		wl := newWitnessedLog(b, 2)
		cfg := benchConfig(b.TempDir())
		wl.configure(&cfg)
		cfg.Ledger.WitnessInterval = time.Second
		loadAuthorize(b, []*testServer{serve(b, cfg)}, 64)
	})
}

// TestWitnessLatency measures, under load, the time from an append's
// acknowledgement to the first checkpoint covering it that both witnesses
// have cosigned (as the store records it, read every millisecond), and
// prints p50, p99 and the maximum. It asserts no figure. Opt in with
// WRIT_WITNESS_LATENCY=1 (WRIT_WITNESS_LATENCY_INTERVAL sets
// ledger.witness_interval, default 1s).
//
//	WRIT_WITNESS_LATENCY=1 go test ./internal/server -run TestWitnessLatency -v
func TestWitnessLatency(t *testing.T) {
	if os.Getenv("WRIT_WITNESS_LATENCY") == "" {
		t.Skip("set WRIT_WITNESS_LATENCY=1 to measure")
	}
	interval := time.Second
	if s := os.Getenv("WRIT_WITNESS_LATENCY_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		interval = d
	}
	wl := newWitnessedLog(t, 2)
	dir := t.TempDir()
	cfg := benchConfig(dir)
	wl.configure(&cfg)
	cfg.Ledger.WitnessInterval = interval
	ts := serve(t, cfg)
	ts.token = devToken(t, dir, identity.RoleAdmin, identity.RoleAuditor)
	d, err := datadir.Open(context.Background(), dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := d.Store.(witness.Store)
	keys := ts.srv.WitnessLoop().Keys()

	// The witnessed size, as it moves.
	type mark struct {
		size uint64
		at   time.Time
	}
	var marks []mark
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		var last uint64
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(time.Millisecond):
			}
			n, err := st.NewestCosigned(context.Background(), keys, 2)
			if err == nil && n > last {
				marks = append(marks, mark{n, time.Now()})
				last = n
			}
		}
	}()

	const clients, duration = 16, 20 * time.Second
	type acked struct {
		index uint64
		at    time.Time
	}
	var mu sync.Mutex
	var acks []acked
	var wg sync.WaitGroup
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	end := time.Now().Add(duration)
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				idx, _, err := appendEvent(context.Background(), c, ts, api.Event{Type: "import.load", Data: json.RawMessage(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))})
				if err != nil {
					t.Error(err)
					return
				}
				at := time.Now()
				mu.Lock()
				acks = append(acks, acked{idx, at})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	last := slices.MaxFunc(acks, func(a, b acked) int { return int(a.index) - int(b.index) }).index
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := st.NewestCosigned(context.Background(), keys, 2)
		if err == nil && n > last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last append (%d) was not witnessed within a minute", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	close(stopPoll)
	<-polled
	var lat []time.Duration
	for _, a := range acks {
		i := sort.Search(len(marks), func(i int) bool { return marks[i].size > a.index })
		if i == len(marks) {
			t.Fatalf("append %d never witnessed", a.index)
		}
		lat = append(lat, max(marks[i].at.Sub(a.at), 0))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	t.Logf("witness_interval %s, %d clients for %s: %d appends (%.0f/s), %d witnessed sizes",
		interval, clients, duration, len(acks), float64(len(acks))/duration.Seconds(), len(marks))
	t.Logf("append acknowledged -> covering checkpoint cosigned by both witnesses: p50 %s, p99 %s, max %s",
		q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}
