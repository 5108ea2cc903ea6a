package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/testkit"
)

// chromium finds the browser for the end-to-end tests: $WRIT_CHROMIUM, else
// chromium on the PATH. Without one the tests skip, unless CI is set, where
// a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("WRIT_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if _, err := os.Stat("/usr/bin/chromium"); err == nil {
			path = "/usr/bin/chromium"
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed, and CI is set: install it (apt-get install chromium) or set WRIT_CHROMIUM")
		}
		t.Skip("chromium is not installed: the browser tests skip (apt-get install chromium, or set WRIT_CHROMIUM)")
	}
	return path
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T, base string) *browser {
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	shots := os.Getenv("WRIT_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	return &browser{t: t, ctx: ctx, base: base, shots: shots}
}

// run runs actions with a deadline, failing the test with what was being
// done.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail stops the test, saying where the browser was.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.t.Fatalf("%s (at %s): %v", what, loc, err)
}

// value runs one action that returns a value, with a deadline.
func value[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// The page helpers below query the page with JavaScript rather than
// through DevTools node IDs, which go stale when a form post navigates.

// poll evaluates expr until it yields a non-null value, for up to 30 s,
// riding out the moments when a navigation replaces the document.
func poll[T any](b *browser, what, expr string) T {
	b.t.Helper()
	var out T
	err := testkit.Poll(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*T](expr))
		cancel()
		if err == nil && v == nil {
			err = errors.New("no value")
		}
		if err == nil {
			out = *v
		}
		return err
	})
	if err != nil {
		b.fail(what, fmt.Errorf("no result within 30s (last error: %v)", err))
	}
	return out
}

// onLoadedPage wraps a use of the element el (bound to the first match of
// sel) so that it yields null until the document has loaded and holds one.
func onLoadedPage(sel, use string) string {
	return fmt.Sprintf(`(function(){ if (document.readyState !== "complete") return null;
var el = document.querySelector(%q); if (el === null) return null; return %s; })()`, sel, use)
}

// waitFor waits until an element matches the CSS selector sel.
func (b *browser) waitFor(sel string) {
	b.t.Helper()
	poll[bool](b, "waiting for "+sel, onLoadedPage(sel, "true"))
}

// text returns the trimmed text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return poll[string](b, "reading "+sel, onLoadedPage(sel, "el.textContent.trim()"))
}

// click clicks the first element matching sel.
func (b *browser) click(sel string) {
	b.t.Helper()
	poll[bool](b, "clicking "+sel, onLoadedPage(sel, "(el.click(), true)"))
}

// typeInto sets the value of the input matching sel.
func (b *browser) typeInto(sel, v string) {
	b.t.Helper()
	poll[bool](b, "typing into "+sel, onLoadedPage(sel, fmt.Sprintf("(el.value = %q, true)", v)))
}

// open navigates to path and waits for sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.run("opening "+path, chromedp.Navigate(b.base+path))
	b.waitFor(sel)
}

// count returns how many elements match a CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return value(b, "counting "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// screenshot saves the page as name.png among the test artifacts and, with
// WRIT_UPDATE_SCREENSHOTS=1, under docs/console/.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := value(b, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	if os.Getenv("WRIT_UPDATE_SCREENSHOTS") == "1" {
		dst := filepath.Join("..", "..", "docs", "console", name+".png")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// signIn uses the dev sign-in page: pick person (the page script ticks
// their usual roles), tick extra roles, submit.
func (b *browser) signIn(person string, extra ...identity.Role) {
	b.t.Helper()
	b.open("/ui/login", "#dev-signin")
	b.click("#person-" + person)
	for _, r := range extra {
		b.click("#role-" + string(r))
	}
	b.click("#dev-submit")
	if got := b.text("header.top .person"); got != person {
		b.t.Fatalf("signed in as %q, want %q", got, person)
	}
}

func (b *browser) signOut() {
	b.t.Helper()
	b.click("header.top button.link")
	b.waitFor("#dev-signin")
}

// TestBrowser walks the console in headless Chromium: an approver sees a
// pending task (and a step-up), the inbox refreshes itself, approving makes
// the task active; a requester finds no approve button on their own task
// and sees the denied action in a timeline; a form post without the CSRF
// token is refused; an admin verifies the ledger.
func TestBrowser(t *testing.T) {
	chromium(t)
	ctx := context.Background()
	pdir, pack := policyDir(t)
	ts := startServer(t, func(c *config.Config) { c.Policy.Dir = pdir })
	firstPolicy := policy.Version(pack)
	alice := ts.api(t, "alice", identity.RoleRequester, identity.RoleApprover)
	carol := ts.api(t, "carol", identity.RoleApprover)

	t1 := ts.openPending(t, alice, "Summarize Q3 invoices and mail the summary to finance")
	t2 := ts.openPending(t, alice, "Reconcile the Q3 invoices against the ERP ledger")
	if _, err := carol.Decide(ctx, t2.TaskID, api.Decide{Decision: "approve", Reason: "quarter close"}); err != nil {
		t.Fatal(err)
	}
	agent := ts.agentFor(t, t2.TaskID)
	read := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", Arguments: json.RawMessage(`{"id":17}`), DataClass: "confidential"}
	if a, err := agent.Authorize(ctx, read); err != nil || !a.Allow {
		t.Fatalf("in-scope call: %+v %v", a, err)
	} else if _, err := agent.RecordResult(ctx, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total":1250}`)}); err != nil {
		t.Fatal(err)
	}
	if a, err := agent.Authorize(ctx, api.Authorize{Tool: "payments.send", Operation: "send", Resource: "bank://acme/payouts", DataClass: "confidential"}); err != nil || a.Allow || a.ApprovalRequired {
		t.Fatalf("out-of-scope call: %+v %v, want a denial", a, err)
	}
	stepUp, err := agent.Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q2/9", Arguments: json.RawMessage(`{"id":9}`), DataClass: "confidential"})
	if err != nil || !stepUp.ApprovalRequired {
		t.Fatalf("step-up: %+v %v", stepUp, err)
	}

	b := newBrowser(t, ts.url)
	b.open("/ui/login", "#dev-signin")
	b.screenshot("login")

	// bob, an approver, sees the pending task and the step-up.
	b.signIn("bob")
	var approval1 string
	for _, a := range mustPending(t, ts.api(t, "bob", identity.RoleApprover)) {
		if a.TaskID == t1.TaskID {
			approval1 = a.ApprovalID
		}
	}
	card := "#approval-" + approval1
	b.waitFor(card)
	b.waitFor("#approval-" + stepUp.ApprovalID)
	if got := b.text(card + " .intent"); got != "Summarize Q3 invoices and mail the summary to finance" {
		t.Errorf("inbox card intent %q", got)
	}
	if got := b.text("#approval-" + stepUp.ApprovalID + " .call"); !strings.Contains(got, "erp://invoices/2026-Q2/9") {
		t.Errorf("step-up card does not show the exact call: %q", got)
	}
	// The inbox refreshes itself when a new request arrives.
	t3 := ts.openPending(t, alice, "Mail the Q3 summary to the board")
	b.waitFor(`article[data-task="` + t3.TaskID + `"]`)
	b.screenshot("inbox")

	// bob approves: the task becomes active.
	b.typeInto(card+" input[name=reason]", "quarter close")
	b.click(card + " button.approve")
	if got := b.text(".flash.good"); !strings.Contains(got, "is now active") {
		t.Errorf("after approving: %q", got)
	}
	if n := b.count(card); n != 0 {
		t.Error("the decided approval is still in the inbox")
	}
	b.open("/ui/tasks/"+t1.TaskID, "#task-state")
	if got := b.text("#task-state"); got != api.StateActive {
		t.Errorf("approved task shows %q, want active", got)
	}
	if got := taskState(t, alice, t1.TaskID); got != api.StateActive {
		t.Errorf("approved task is %s through the API", got)
	}
	b.signOut()

	// alice, requester and approver, finds no approve button on her own task.
	b.signIn("alice", identity.RoleApprover)
	b.open("/ui/tasks/"+t3.TaskID, "#task-state")
	if got := b.text("#task-state"); got != api.StatePendingApproval {
		t.Fatalf("own task shows %q", got)
	}
	if n := b.count(`button[value="approve"]`); n != 0 {
		t.Errorf("%d approve buttons on the requester's own task", n)
	}
	b.open("/ui/inbox", "#inbox")
	if n := b.count(`article[data-task="` + t3.TaskID + `"]`); n != 0 {
		t.Error("the requester's own task is in her inbox")
	}

	// Her other task's timeline shows the denied action.
	b.open("/ui/tasks/"+t2.TaskID, "#timeline")
	titles := value(b, "reading denied actions", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#timeline li[data-type="action.denied"] .title')).map(e => e.textContent)`))
	// One outright denial (payments.send) and the step-up's pending denial.
	if len(titles) != 2 || !slices.ContainsFunc(titles, func(s string) bool { return strings.Contains(s, "payments.send") }) {
		t.Errorf("denied actions in the timeline: %q, want payments.send and the step-up", titles)
	}
	for _, typ := range []string{"task.requested", "policy.decided", "approval.granted", "task.activated", "credential.issued", "action.authorized", "action.completed"} {
		if b.count(`#timeline li[data-type="`+typ+`"]`) == 0 {
			t.Errorf("timeline lacks %s", typ)
		}
	}
	if b.count(`#timeline .idx`) != b.count(`#timeline li`) {
		t.Error("a timeline item lacks its ledger index")
	}
	if b.count("#evidence") != 1 {
		t.Error("the task page offers no evidence bundle to its requester")
	}
	b.screenshot("task")

	// A form post without the CSRF token is refused and changes nothing.
	b.run("posting a form without the CSRF token",
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](`(function(){var f=document.createElement("form");f.method="post";f.action="/ui/tasks/`+t2.TaskID+`/revoke";
var i=document.createElement("input");i.name="reason";i.value="forged";f.appendChild(i);document.body.appendChild(f);f.submit();return "sent"})()`)(ctx, t)
			return err
		}))
	if got := b.text("#error-detail"); !strings.Contains(got, "CSRF") {
		t.Errorf("CSRF-less post answered %q", got)
	}
	if got := taskState(t, alice, t2.TaskID); got != api.StateActive {
		t.Fatalf("the CSRF-less revoke changed the task to %s", got)
	}

	b.open("/ui/tasks", "#task-list")
	if n := b.count("#task-list tbody tr[data-task]"); n != 3 {
		t.Errorf("task list shows %d tasks, want 3", n)
	}
	b.screenshot("tasks")
	b.signOut()

	// erin, an admin and auditor, verifies the ledger.
	b.signIn("erin")
	b.open("/ui/ledger", "#verify-now")
	b.click("#verify-now")
	b.waitFor(".flash")
	if got := b.text("#verify-result"); !strings.Contains(got, "The ledger verifies.") {
		t.Errorf("verification result %q", got)
	}
	b.screenshot("ledger")
	b.open("/ui/access", "#access")
	if n := b.count(`#access tr[data-agent="` + testAgent + `"]`); n != 1 {
		t.Errorf("the access report has %d rows for the agent, want 1", n)
	}
	b.screenshot("access")
	// A second policy version: the page lists both and diffs them.
	rego := filepath.Join(pdir, "writ.rego")
	old, err := os.ReadFile(rego)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rego, append(old, []byte("# Reviewed for the Q4 audit: decisions unchanged.\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range pack.Files {
		if f.Path == "writ.rego" {
			pack.Files[i].Data, _ = os.ReadFile(rego)
		}
	}
	second := policy.Version(pack)
	if second == firstPolicy {
		t.Fatal("the edited bundle kept its version")
	}
	b.open("/ui/policies?a="+firstPolicy+"&b="+second, "#versions")
	if n := b.count("#versions tbody tr"); n != 2 {
		t.Errorf("%d policy versions listed, want 2", n)
	}
	if got := b.text("#versions tbody tr:last-child .decisions"); got == "0" || got == "" {
		t.Errorf("the first version counts %q decisions", got)
	}
	if got := b.text("pre.diff .dadd"); !strings.Contains(got, "Reviewed for the Q4 audit") {
		t.Errorf("the diff's added line is %q", got)
	}
	b.screenshot("policies")
}
