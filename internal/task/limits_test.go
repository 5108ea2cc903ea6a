package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

func n64(n int64) *int64 { return &n }

// TestScopeHashWithoutLimits: a scope without limits hashes byte for byte
// as it did before limits existed, and an empty limits object is the same
// scope.
func TestScopeHashWithoutLimits(t *testing.T) {
	s := api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*", "mail://finance"},
		Operations: []string{"read", "send"}, DataClass: "confidential", Environments: []string{"prod"}}
	const want = "sha256:f8f208af7ba52c67165059a4fb0ba7ce29290bd0aa5da6f4c6d4a6e293e41804"
	if got := task.Scope(s).Hash(); got != want {
		t.Errorf("hash of a scope without limits changed: %s, want %s", got, want)
	}
	limited := s
	limited.Limits = &api.Limits{Calls: n64(500)}
	if task.Scope(limited).Hash() == want {
		t.Error("limits are not part of the scope hash")
	}

	e := newEnv(t, "dev")
	plain := e.openTask(alice, scope("internal", "dev"), nil)
	empty := scope("internal", "dev")
	empty.Limits = &api.Limits{}
	if got := e.openTask(alice, empty, nil); got.ScopeHash != plain.ScopeHash {
		t.Errorf("an empty limits object changed the scope hash: %s, want %s", got.ScopeHash, plain.ScopeHash)
	}
}

func TestLimitsValidate(t *testing.T) {
	e := newEnv(t, "dev")
	for _, tc := range []struct {
		limits api.Limits
		want   string
	}{
		{api.Limits{Calls: n64(0)}, "scope.limits.calls is 0; want 1 to"},
		{api.Limits{PerMinute: n64(-5)}, "scope.limits.per_minute is -5"},
		{api.Limits{Calls: n64(task.MaxLimit + 1)}, "scope.limits.calls is 1000000001"},
		{api.Limits{PerTool: map[string]int64{"mail.send": 0}}, `scope.limits.per_tool["mail.send"] is 0`},
		{api.Limits{PerTool: map[string]int64{" ": 3}}, "empty tool pattern"},
	} {
		s := scope("internal", "dev")
		s.Limits = &tc.limits
		_, err := e.svc.Open(context.Background(), alice, api.OpenTask{Agent: agent, Intent: "x", Scope: s})
		if !errors.Is(err, task.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalid saying %q", tc.limits, err, tc.want)
		}
	}
}

// TestLimitsNarrowOnly: a child task asks no more than its parent and
// keeps every limit the parent has.
func TestLimitsNarrowOnly(t *testing.T) {
	e := newEnv(t, "dev")
	ps := scope("internal", "dev")
	ps.Limits = &api.Limits{Calls: n64(10), PerTool: map[string]int64{"mail.send": 2}}
	parent := e.openTask(alice, ps, nil)
	for _, tc := range []struct {
		name   string
		limits *api.Limits
		ok     bool
	}{
		{"none", nil, false},
		{"more calls", &api.Limits{Calls: n64(11), PerTool: map[string]int64{"mail.send": 2}}, false},
		{"drops per_tool", &api.Limits{Calls: n64(5)}, false},
		{"more per_tool", &api.Limits{Calls: n64(5), PerTool: map[string]int64{"mail.send": 3}}, false},
		{"narrower", &api.Limits{Calls: n64(5), PerTool: map[string]int64{"mail.send": 1}, PerMinute: n64(10)}, true},
		{"same", &api.Limits{Calls: n64(10), PerTool: map[string]int64{"mail.send": 2, "invoices.*": 4}}, true},
	} {
		cs := scope("internal", "dev")
		cs.Limits = tc.limits
		_, err := e.svc.Open(context.Background(), alice, api.OpenTask{Agent: agent, Intent: "child", Scope: cs, Parent: &parent.TaskID})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && code(err) != "scope_widens" {
			t.Errorf("%s: %v, want scope_widens", tc.name, err)
		}
	}
}

// limitedTask opens a task with limits l and returns its credential.
func limitedTask(e *env, l api.Limits, parent *string) (api.TaskOpened, task.VerifiedCredential) {
	e.t.Helper()
	s := scope("internal", "dev")
	s.Limits = &l
	out := e.openTask(alice, s, parent)
	return out, e.credential(out.TaskID)
}

// TestLimitsExactUnderConcurrency: 20 concurrent calls against a budget
// of 10 let exactly 10 through; each refusal names the limit, in its
// reasons and in its record.
func TestLimitsExactUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	opened, cred := limitedTask(e, api.Limits{Calls: n64(10)}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, refused := 0, 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{"i": `+string(rune('0'+i%10))+`}`), task.Request{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("call %d: %v", i, err)
			case a.Allow:
				allowed++
			case len(a.Reasons) == 1 && strings.Contains(a.Reasons[0], "limits.calls (10 calls) is reached"):
				refused++
			default:
				t.Errorf("call %d: %+v", i, a)
			}
		}()
	}
	wg.Wait()
	if allowed != 10 || refused != 10 {
		t.Fatalf("%d allowed and %d refused, want 10 and 10", allowed, refused)
	}
	d := lastDenied(t, e)
	want := event.LimitReached{TaskID: opened.TaskID, Name: event.LimitCalls, Max: 10}
	if d.Refused != task.RefusedLimit || d.Limit == nil || *d.Limit != want || d.Effect != string(policy.Allow) {
		t.Errorf("refusal recorded as %+v (limit %+v), want refused %s, limit %+v, the policy's effect", d, d.Limit, task.RefusedLimit, want)
	}
	// Across a restart the budget stays spent.
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), task.Request{}); err != nil || a.Allow {
		t.Fatalf("after a restart: %+v %v", a, err)
	}
}

// lastDenied returns the data of the ledger's last action.denied.
func lastDenied(t *testing.T, e *env) event.ActionDecided {
	t.Helper()
	size, err := e.store.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := size; i > 0; i-- {
		entry := leafAt(t, e, i-1)
		if entry.Event.Type == ledger.TypeActionDenied {
			var d event.ActionDecided
			if err := json.Unmarshal(entry.Event.Data, &d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("no action.denied")
	return event.ActionDecided{}
}

func TestLimitsPerToolAndPerMinute(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	_, cred := limitedTask(e, api.Limits{PerTool: map[string]int64{"mail.*": 2}, PerMinute: n64(4)}, nil)
	send := api.Authorize{Tool: "mail.send", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "internal"}
	read := call("invoices.read", "erp://invoices/2026-Q3/1", `{}`)
	for i, c := range []struct {
		call  api.Authorize
		allow bool
		why   string
	}{
		{send, true, ""}, {send, true, ""},
		{send, false, `limits.per_tool["mail.*"] (2 calls) is reached`},
		{read, true, ""}, {read, true, ""},
		{read, false, "limits.per_minute (4 calls a minute) is reached"},
	} {
		a, err := e.svc.Authorize(ctx, cred, c.call, task.Request{})
		if err != nil || a.Allow != c.allow || (!c.allow && !strings.Contains(strings.Join(a.Reasons, " "), c.why)) {
			t.Fatalf("call %d (%s): %+v %v, want allow %t %q", i, c.call.Tool, a, err, c.allow, c.why)
		}
		e.clk.Add(time.Second)
	}
	// The minute passes: the window is taken over the events' times. The
	// allowed calls were at 0, 1, 3 and 4 seconds; it is now 6.
	e.clk.Add(53 * time.Second)
	if a, _ := e.svc.Authorize(ctx, cred, read, task.Request{}); a.Allow {
		t.Fatalf("59 seconds after the first call the window still holds 4: %+v", a)
	}
	e.clk.Add(time.Second)
	if a, err := e.svc.Authorize(ctx, cred, read, task.Request{}); err != nil || !a.Allow {
		t.Fatalf("a minute after the first call: %+v %v", a, err)
	}
	if a, _ := e.svc.Authorize(ctx, cred, send, task.Request{}); a.Allow {
		t.Fatalf("per_tool is over the task's life, not a window: %+v", a)
	}
}

// TestLimitsCountDescendants: a child's calls count against its parent's
// limits, so delegation cannot multiply a budget; the refusal names the
// parent.
func TestLimitsCountDescendants(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	parent, pcred := limitedTask(e, api.Limits{Calls: n64(3)}, nil)
	_, ccred := limitedTask(e, api.Limits{Calls: n64(3)}, &parent.TaskID)
	c := call("invoices.read", "erp://invoices/2026-Q3/1", `{}`)
	for i, cred := range []task.VerifiedCredential{pcred, ccred, ccred} {
		if a, err := e.svc.Authorize(ctx, cred, c, task.Request{}); err != nil || !a.Allow {
			t.Fatalf("call %d: %+v %v", i, a, err)
		}
	}
	a, err := e.svc.Authorize(ctx, ccred, c, task.Request{})
	if err != nil || a.Allow || !strings.Contains(a.Reasons[0], "of task "+parent.TaskID+", which this task was delegated from") {
		t.Fatalf("the fourth call in the family: %+v %v", a, err)
	}
	// What a trace shows of it: the family's calls against each task's
	// limits.
	size, _ := e.store.Size(ctx)
	var entries []ledger.Entry
	for i := range size {
		entries = append(entries, leafAt(t, e, i))
	}
	var got []string
	for _, u := range task.LimitUses(entries) {
		got = append(got, u.String())
	}
	if want := []string{"calls 3 of 3", "calls 2 of 3"}; !slices.Equal(got, want) {
		t.Errorf("limit uses %q, want %q", got, want)
	}
}

// TestLimitsBeforeStepUp: a call its limits refuse asks no approver.
func TestLimitsBeforeStepUp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	_, cred := limitedTask(e, api.Limits{Calls: n64(1)}, nil)
	if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), task.Request{}); err != nil || !a.Allow {
		t.Fatalf("first call: %+v %v", a, err)
	}
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2025/1", `{}`), task.Request{})
	if err != nil || a.Allow || a.ApprovalRequired || !strings.Contains(a.Reasons[0], "limits.calls") {
		t.Fatalf("an out-of-scope resource past the budget: %+v %v", a, err)
	}
	if p := e.svc.ListPendingApprovals(bob.ID); len(p) != 0 {
		t.Errorf("approvers were asked: %+v", p)
	}
}
