package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/latency"
)

// Bench bounds: a load run never goes on unattended.
const (
	benchMaxDuration    = 10 * time.Minute
	benchMaxConcurrency = 1024
)

func benchCommand() *command {
	return &command{name: "bench", summary: "measure a running server under load", subs: []*command{benchAuthorizeCommand()}}
}

func benchAuthorizeCommand() *command {
	c := &command{name: "authorize",
		args:    "[--server URL] [--also URL]... (--token TASK-TOKEN | --setup --dev-data-dir DIR) [--concurrency 1] [--duration 10s] [--requests N] [--deny-percent P] [-o table|json]",
		summary: "load POST /v1/authorize with concurrent clients; report throughput, latency percentiles and outcomes"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "task access")
		setup := fs.Bool("setup", false, "open a task and exchange its token first (needs --dev-data-dir); complete the task afterwards")
		devDir := fs.String("dev-data-dir", "", "the dev server's data `dir`, to mint the requester, approver and agent identities for --setup")
		conc := fs.Int("concurrency", 1, "concurrent `clients` (1 to 1024)")
		dur := fs.Duration("duration", 10*time.Second, "how long to run (at most 10m)")
		maxReq := fs.Int64("requests", 0, "stop after `N` requests (0: only the duration bounds the run)")
		denyPct := fs.Int("deny-percent", 0, "share of calls, in `percent`, for a tool outside the scope (denied)")
		var also urlList
		fs.Var(&also, "also", "another replica's server `URL` (repeatable): calls go round-robin over --server and these")
		var call api.Authorize
		fs.StringVar(&call.Tool, "tool", "bench.read", "the `tool` of the allowed call")
		fs.StringVar(&call.Operation, "operation", "read", "its `operation`")
		fs.StringVar(&call.Resource, "resource", "bench://items/1", "its `resource`")
		fs.StringVar(&call.DataClass, "data-class", "internal", "its data `class`")
		if _, err := parseArgs(c, fs, args, 0, 0); err != nil {
			return err
		}
		switch {
		case *conc < 1 || *conc > benchMaxConcurrency:
			return &usageError{msg: fmt.Sprintf("--concurrency %d: want 1 to %d", *conc, benchMaxConcurrency)}
		case *dur <= 0 || *dur > benchMaxDuration:
			return &usageError{msg: fmt.Sprintf("--duration %s: want more than 0 and at most %s", *dur, benchMaxDuration)}
		case *maxReq < 0:
			return &usageError{msg: "--requests must not be negative"}
		case *denyPct < 0 || *denyPct > 100:
			return &usageError{msg: "--deny-percent: want 0 to 100"}
		case *setup && *devDir == "":
			return &usageError{msg: "--setup needs --dev-data-dir", hint: "point it at the data directory of a 'writ server --dev'"}
		}
		cl, err := af.client(io, !*setup)
		if err != nil {
			return err
		}
		b := &bench{io: io, call: call, deny: *denyPct, conc: *conc, dur: *dur, maxReq: *maxReq, also: also}
		if *setup {
			end, err := b.setup(ctx, cl, *devDir)
			if err != nil {
				return err
			}
			defer end()
		} else {
			tok := af.token
			if tok == "" {
				tok = strings.TrimSpace(io.Getenv("WRIT_TOKEN"))
			}
			b.setAgent(cl, tok)
		}
		rep := b.run(ctx)
		if af.out == "json" {
			if err := printJSON(io, rep); err != nil {
				return err
			}
		} else {
			printBench(io, rep)
		}
		if rep.Requests == 0 {
			return errors.New("no request completed")
		}
		return nil
	}
	return c
}

// bench is one load run.
type bench struct {
	io     IO
	call   api.Authorize
	deny   int
	conc   int
	dur    time.Duration
	maxReq int64

	// also lists more replicas' URLs; calls go round-robin over the
	// server and these.
	also []string
	// onAllow, when set, hears the action ID of every allowed call.
	onAllow func(actionID string)

	agents atomic.Pointer[[]*client.Client] // one per server, with the current task token
}

// setAgent makes cl (and its twins for the other replicas) the clients
// the run uses.
func (b *bench) setAgent(cl *client.Client, token string) {
	all := []*client.Client{cl}
	for _, u := range b.also {
		all = append(all, client.New(u, token))
	}
	b.agents.Store(&all)
}

// urlList is a repeatable URL flag.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }
func (l *urlList) Set(v string) error {
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return fmt.Errorf("%q: want an http:// or https:// URL", v)
	}
	*l = append(*l, strings.TrimRight(v, "/"))
	return nil
}

// setup opens a task for a bench agent with the dev identities, has it
// approved if policy asks, and exchanges the agent's token, renewing it
// while the run lasts. The returned function completes the task.
func (b *bench) setup(ctx context.Context, cl *client.Client, dir string) (func(), error) {
	const agent = "spiffe://" + identity.DevTrustDomain + "/agent/bench"
	now := time.Now()
	req, err := identity.DevToken(dir, "bench-requester", []identity.Role{identity.RoleRequester}, time.Hour, now)
	if err != nil {
		return nil, devHint(err)
	}
	appr, err := identity.DevToken(dir, "bench-approver", []identity.Role{identity.RoleApprover}, time.Hour, now)
	if err != nil {
		return nil, devHint(err)
	}
	requester := cl.WithToken(req)
	t, err := requester.OpenTask(ctx, api.OpenTask{Agent: agent, Intent: "writ bench authorize load run", TTL: "30m",
		Scope: api.Scope{Tools: []string{b.call.Tool}, Resources: []string{b.call.Resource}, Operations: []string{b.call.Operation},
			DataClass: b.call.DataClass, Environments: []string{"*"}}})
	if err != nil {
		return nil, apiError(err, cl.BaseURL())
	}
	switch t.State {
	case api.StatePendingApproval:
		if _, err := cl.WithToken(appr).Decide(ctx, t.TaskID, api.Decide{Decision: "approve", Reason: "bench"}); err != nil {
			return nil, apiError(err, cl.BaseURL())
		}
	case api.StateDenied:
		return nil, fmt.Errorf("bench task denied: %v", t.Reasons)
	}
	exchange := func(ctx context.Context) (int, error) {
		svid, err := identity.DevSVID(dir, agent, []string{"writ"}, 5*time.Minute, time.Now())
		if err != nil {
			return 0, err
		}
		tok, err := cl.ExchangeToken(ctx, svid, t.TaskID)
		if err != nil {
			return 0, exchangeError(err, cl.BaseURL(), t.TaskID)
		}
		b.setAgent(cl.WithToken(tok.AccessToken), tok.AccessToken)
		return tok.ExpiresIn, nil
	}
	life, err := exchange(ctx)
	if err != nil {
		requester.Revoke(context.WithoutCancel(ctx), t.TaskID, "bench setup failed")
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(max(time.Duration(life)*time.Second*2/3, time.Second)):
			}
			if l, err := exchange(rctx); err == nil {
				life = l
			}
		}
	}()
	fmt.Fprintf(b.io.Stderr, "writ: bench task %s open for %s\n", t.TaskID, agent)
	return func() {
		stop()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := requester.Complete(ctx, t.TaskID); err != nil {
			fmt.Fprintf(b.io.Stderr, "writ: completing bench task %s: %v\n", t.TaskID, err)
		}
	}, nil
}

// benchReport is the outcome of a run; -o json prints it as is.
type benchReport struct {
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"`
	Requests    int64          `json:"requests"`
	PerSecond   float64        `json:"requests_per_second"`
	Allowed     int64          `json:"allowed"`
	Denied      int64          `json:"denied"`
	StepUps     int64          `json:"approval_required"`
	Errors      map[string]int `json:"errors"`
	// DenyReasons counts the reasons of denials and step-ups.
	DenyReasons map[string]int `json:"deny_reasons,omitempty"`
	latency.Summary
}

// workerResult is what one client saw.
type workerResult struct {
	lat                     []time.Duration
	allowed, denied, stepUp int64
	errors, reasons         map[string]int
}

func (b *bench) run(ctx context.Context) benchReport {
	ctx, cancel := context.WithTimeout(ctx, b.dur)
	defer cancel()
	denied := b.call
	denied.Tool = "bench.outside-scope"
	var issued atomic.Int64
	results := make([]workerResult, b.conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range b.conc {
		wg.Add(1)
		go func(r *workerResult) {
			defer wg.Done()
			r.errors, r.reasons = map[string]int{}, map[string]int{}
			turn := w
			for ctx.Err() == nil {
				if b.maxReq > 0 && issued.Add(1) > b.maxReq {
					return
				}
				call := b.call
				if b.deny > 0 && rand.IntN(100) < b.deny {
					call = denied
				}
				t0 := time.Now()
				agents := *b.agents.Load()
				turn++
				a, err := agents[turn%len(agents)].Authorize(ctx, call)
				lat := time.Since(t0)
				var ce *client.Error
				switch {
				case err != nil && ctx.Err() != nil:
					return // cut off by the deadline: not counted
				case errors.As(err, &ce):
					r.errors[fmt.Sprintf("%d %s", ce.Status, ce.Body.Error)]++
				case err != nil:
					r.errors["transport"]++
				case a.Allow:
					r.allowed++
					if b.onAllow != nil {
						b.onAllow(a.ActionID)
					}
				case a.ApprovalRequired:
					r.stepUp++
					r.reasons[strings.Join(a.Reasons, "; ")]++
				default:
					r.denied++
					r.reasons[strings.Join(a.Reasons, "; ")]++
				}
				r.lat = append(r.lat, lat)
			}
		}(&results[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep := benchReport{Concurrency: b.conc, Seconds: elapsed.Seconds(), Errors: map[string]int{}, DenyReasons: map[string]int{}}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		rep.Allowed += r.allowed
		rep.Denied += r.denied
		rep.StepUps += r.stepUp
		for k, v := range r.errors {
			rep.Errors[k] += v
		}
		for k, v := range r.reasons {
			rep.DenyReasons[k] += v
		}
	}
	rep.Requests = int64(len(all))
	if elapsed > 0 {
		rep.PerSecond = float64(rep.Requests) / elapsed.Seconds()
	}
	rep.Summary = latency.Summarize(all)
	return rep
}

func printBench(io IO, r benchReport) {
	w := newTable(io)
	fmt.Fprintf(w, "concurrency\t%d\n", r.Concurrency)
	fmt.Fprintf(w, "duration\t%.1fs\n", r.Seconds)
	fmt.Fprintf(w, "requests\t%d\n", r.Requests)
	fmt.Fprintf(w, "throughput\t%.0f req/s\n", r.PerSecond)
	fmt.Fprintf(w, "latency\tp50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	fmt.Fprintf(w, "allowed\t%d\n", r.Allowed)
	fmt.Fprintf(w, "denied\t%d\n", r.Denied)
	if r.StepUps > 0 {
		fmt.Fprintf(w, "approval required\t%d\n", r.StepUps)
	}
	for _, k := range slices.Sorted(maps.Keys(r.DenyReasons)) {
		fmt.Fprintf(w, "  reason %q\t%d\n", k, r.DenyReasons[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "errors %s\t%d\n", k, r.Errors[k])
	}
	w.Flush()
}
