package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// BenchmarkDecision measures one Evaluate call (derived facts, engine, fail-
// closed wrapper, decision ID) per engine, with the default pack alone and
// with 1,000 agents' entries the pack consults. The action carries a task's
// history, which the pack's data-flow and rate rules read. p50 and p99 come
// from the per-iteration durations. (The history's lookup in the task
// state is BenchmarkDecisionWithHistory in package task.)
func BenchmarkDecision(b *testing.B) {
	for _, data := range []int{0, 1000} {
		for _, engine := range []string{EngineRego, EngineCedar} {
			for _, point := range []Point{PointAction, PointTask} {
				name := fmt.Sprintf("%s/agents=%d/%s", engine, data, point)
				b.Run(name, func(b *testing.B) {
					src, err := DefaultPack(engine)
					if err != nil {
						b.Fatal(err)
					}
					if data > 0 {
						src = withFiles(src, agentData(data, "spiffe://example.org/agent/suspended")[engine]...)
					}
					p := benchPolicy(b, src, engine)
					in := inScopeAction()
					in.Agent.ID = "spiffe://example.org/agent/a500"
					in.History = benchHistory()
					if point == PointTask {
						in.Action, in.History = nil, nil
						in.Task.TTL = "30m"
					}
					ctx := context.Background()
					if d := p.Evaluate(ctx, point, in); d.Effect != Allow {
						b.Fatalf("decision %+v", d)
					}
					durs := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						t0 := time.Now()
						p.Evaluate(ctx, point, in)
						durs = append(durs, time.Since(t0))
					}
					b.StopTimer()
					reportPercentiles(b, durs)
				})
			}
		}
	}
}

// BenchmarkDecisionDistinctFacts is BenchmarkDecision at the task point with
// a different TTL, and so different derived facts, on every call: the worst
// case for the engines' derived-facts caches.
func BenchmarkDecisionDistinctFacts(b *testing.B) {
	for _, engine := range []string{EngineRego, EngineCedar} {
		b.Run(engine, func(b *testing.B) {
			src, err := DefaultPack(engine)
			if err != nil {
				b.Fatal(err)
			}
			p := benchPolicy(b, src, engine)
			in := inScopeAction()
			in.Action = nil
			ttls := make([]string, 10000)
			for i := range ttls {
				ttls[i] = fmt.Sprintf("%ds", i+1)
			}
			ctx := context.Background()
			in.Task.TTL = ttls[len(ttls)-1]
			if d := p.Evaluate(ctx, PointTask, in); d.Effect != Allow {
				b.Fatalf("decision %+v", d)
			}
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				in.Task.TTL = ttls[i%len(ttls)]
				i++
				t0 := time.Now()
				p.Evaluate(ctx, PointTask, in)
				durs = append(durs, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, durs)
		})
	}
}

// benchPolicy returns a Policy with src, in engine, active.
func benchPolicy(b *testing.B, src Sources, engine string) *Policy {
	b.Helper()
	eng, err := Compile(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	p := &Policy{cfg: Config{Timeout: DefaultTimeout}, log: slog.New(slog.DiscardHandler)}
	p.active.Store(&loaded{engine: eng, version: Version(src), name: engine})
	return p
}

// reportPercentiles reports the median and the 99th percentile of the
// per-iteration durations, in microseconds.
func reportPercentiles(b *testing.B, durs []time.Duration) {
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}

// benchHistory is the history of a task some way into its work.
func benchHistory() *History {
	return &History{Version: HistoryVersion,
		Task: TaskHistory{Calls: Calls{Allowed: 41, Denied: 3, InFlight: 2}, Tools: 4, Operations: 2,
			MaxDataClass: "internal", MaxDataClassLevel: 1,
			LastMinute: Window{Calls: 12, Allowed: 11, Denied: 1}, LastHour: Window{Calls: 44, Allowed: 41, Denied: 3}},
		Tool:      Calls{Allowed: 20, InFlight: 1},
		Operation: Calls{Allowed: 30, Denied: 1, InFlight: 2},
		Agent: AgentHistory{LastMinute: Window{Calls: 30, Allowed: 28, Denied: 2},
			LastHour: Window{Calls: 400, Allowed: 380, Denied: 20}},
		Resources: Reach{Reached: 17, Destinations: 2, ResourceReached: true, DestinationReached: true},
		Approvals: Approvals{Spent: 1},
	}
}

// BenchmarkDecisionDistinctHistory is BenchmarkDecision at the action
// point with a different history on every call (the agent's calls in the
// last minute climbing): the worst case for the history caches.
func BenchmarkDecisionDistinctHistory(b *testing.B) {
	for _, engine := range []string{EngineRego, EngineCedar} {
		b.Run(engine, func(b *testing.B) {
			src, err := DefaultPack(engine)
			if err != nil {
				b.Fatal(err)
			}
			p := benchPolicy(b, src, engine)
			in := inScopeAction()
			in.History = benchHistory()
			ctx := context.Background()
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			i := int64(0)
			for b.Loop() {
				i++
				in.History.Agent.LastMinute.Calls = i
				t0 := time.Now()
				p.Evaluate(ctx, PointAction, in)
				durs = append(durs, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, durs)
		})
	}
}

// BenchmarkMarshalInput encodes the recorded input of one call (the
// action point's document, with a history and arguments), by MarshalInput
// and by encoding/json, which it matches byte for byte.
func BenchmarkMarshalInput(b *testing.B) {
	in := inScopeAction()
	in.History = benchHistory()
	in.Action.Arguments = map[string]any{"path": "/data/x", "n": 3.0, "opts": map[string]any{"a": true, "b": []any{"x", "y"}}}
	doc, err := Document(PointAction, in)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		enc  func(*Input) ([]byte, error)
	}{{"writ", MarshalInput}, {"encoding-json", func(in *Input) ([]byte, error) { return json.Marshal(in) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRegoInput builds the whole Rego input document of one call (a
// bundle that reads every member, as one reading input.task.scope does),
// with the engine's caches (derived facts, the task member) and without.
func BenchmarkRegoInput(b *testing.B) {
	in := inScopeAction()
	in.History = benchHistory()
	doc, err := Document(PointAction, in)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		var derived derivedCache[*ast.Term]
		var tasks taskCache[*ast.Term]
		b.ReportAllocs()
		for b.Loop() {
			regoValue(doc, nil, nil, &derived, &tasks)
		}
	})
	b.Run("derived-cached", func(b *testing.B) {
		var derived derivedCache[*ast.Term]
		b.ReportAllocs()
		for b.Loop() {
			regoValue(doc, nil, nil, &derived, nil)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			regoValue(doc, nil, nil, nil, nil)
		}
	})
}
