package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
)

func TestSecurityHeadersAndCookie(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowserless(t, ts.url)
	p := b.get("/ui/login")
	if p.status != http.StatusOK {
		t.Fatalf("GET /ui/login: %d", p.status)
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if strings.Contains(p.body, "<script>") || regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
		t.Error("page carries inline script")
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{"writ_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %q", ck, want)
		}
	}
	// Without TLS the cookie cannot be Secure; with an https public URL it is.
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie %q is Secure on plain HTTP", ck)
	}
	sec := startServer(t, func(c *config.Config) { c.Console.PublicURL = "https://writ.example.com" })
	p = newBrowserless(t, sec.url).get("/ui/login")
	ck = p.header.Get("Set-Cookie")
	if !strings.HasPrefix(ck, "__Host-writ_session=") || !strings.Contains(ck, "Secure") {
		t.Errorf("cookie behind an https public URL: %q, want __Host- and Secure", ck)
	}
	if got := p.header.Get("Strict-Transport-Security"); got == "" {
		t.Error("no Strict-Transport-Security behind an https public URL")
	}
	if p := b.get("/ui/static/"); p.status != http.StatusNotFound {
		t.Errorf("static directory listing: %d, want 404", p.status)
	}
	// Static files come from the binary.
	if p := b.get("/ui/static/console.js"); p.status != http.StatusOK || !strings.Contains(p.body, "use strict") {
		t.Errorf("console.js: %d", p.status)
	}
}

func TestSignedOutIsRedirected(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowserless(t, ts.url)
	for _, path := range []string{"/ui/", "/ui/inbox", "/ui/tasks", "/ui/ledger", "/ui/policies"} {
		if p := b.get(path); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s signed out: %d %s, want 303 to /ui/login", path, p.status, p.header.Get("Location"))
		}
	}
	if p := b.post("/ui/approvals/x", url.Values{"decision": {"approve"}}, false); p.status != http.StatusUnauthorized {
		t.Errorf("POST signed out: %d, want 401", p.status)
	}
}

// TestCSRF checks that a form post without the session's CSRF token, with
// another token, or from another site changes nothing, and that the same
// post with the token does.
func TestCSRF(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	task := ts.openPending(t, alice, "Summarize Q3 invoices")
	b := newBrowserless(t, ts.url)
	b.signIn("bob", identity.RoleApprover)
	page := b.get("/ui/inbox")
	if !strings.Contains(page.body, task.TaskID) {
		t.Fatalf("inbox does not list %s", task.TaskID)
	}
	var approvalID string
	for _, a := range mustPending(t, ts.api(t, "bob", identity.RoleApprover)) {
		if a.TaskID == task.TaskID {
			approvalID = a.ApprovalID
		}
	}
	path := "/ui/approvals/" + approvalID
	form := func() url.Values { return url.Values{"decision": {"approve"}, "reason": {"ok"}} }

	if p := b.post(path, form(), false); p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
		t.Errorf("post without a CSRF token: %d, want 403 naming CSRF", p.status)
	}
	bad := form()
	bad.Set("csrf", strings.Repeat("A", 43))
	if p := b.post(path, bad, false); p.status != http.StatusForbidden {
		t.Errorf("post with a wrong CSRF token: %d, want 403", p.status)
	}
	// Another session's token is no good either.
	other := newBrowserless(t, ts.url)
	other.signIn("carol", identity.RoleApprover)
	other.get("/ui/inbox")
	stolen := form()
	stolen.Set("csrf", other.csrf)
	if p := b.post(path, stolen, false); p.status != http.StatusForbidden {
		t.Errorf("post with another session's token: %d, want 403", p.status)
	}
	// A cross-site post is refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(url.Values{"decision": {"approve"}, "csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", p.status)
	}
	if got := taskState(t, alice, task.TaskID); got != api.StatePendingApproval {
		t.Fatalf("after refused posts the task is %s, want pending_approval", got)
	}
	if slices.Contains(traceTypes(t, alice, task.TaskID), "approval.granted") {
		t.Fatal("a refused post recorded an approval")
	}
	b.get("/ui/inbox")
	if p := b.post(path, form(), true); p.status != http.StatusSeeOther {
		t.Fatalf("post with the token: %d\n%s", p.status, p.body)
	}
	if got := taskState(t, alice, task.TaskID); got != api.StateActive {
		t.Fatalf("approved task is %s, want active", got)
	}
	if p := b.get("/ui/inbox"); !strings.Contains(p.body, "is now active") {
		t.Error("no confirmation after approving")
	}
}

func mustPending(t testing.TB, c interface {
	PendingApprovals(context.Context) ([]api.PendingApproval, error)
}) []api.PendingApproval {
	t.Helper()
	list, err := c.PendingApprovals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestSeparationOfDuties: a requester who is also an approver neither sees
// their own task in the inbox nor an approve button on it, and a forced
// post is refused and recorded, as through the API.
func TestSeparationOfDuties(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester, identity.RoleApprover)
	task := ts.openPending(t, alice, "Mail the Q3 summary to finance")
	b := newBrowserless(t, ts.url)
	b.signIn("alice", identity.RoleRequester, identity.RoleApprover)
	if p := b.get("/ui/inbox"); strings.Contains(p.body, task.TaskID) {
		t.Error("the requester's own task is in their inbox")
	}
	p := b.get("/ui/tasks/" + task.TaskID)
	if p.status != http.StatusOK {
		t.Fatalf("task page: %d", p.status)
	}
	if strings.Contains(p.body, `value="approve"`) {
		t.Error("the requester's own task page offers an approve button")
	}
	// The approval ID, as another approver sees it.
	var approvalID string
	for _, a := range mustPending(t, ts.api(t, "bob", identity.RoleApprover)) {
		if a.TaskID == task.TaskID {
			approvalID = a.ApprovalID
		}
	}
	p = b.post("/ui/approvals/"+approvalID, url.Values{"decision": {"approve"}}, true)
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "cannot approve") {
		t.Fatalf("self-approval post: %d, want 403 'cannot approve'\n%s", p.status, p.body)
	}
	if got := taskState(t, alice, task.TaskID); got != api.StatePendingApproval {
		t.Fatalf("task is %s after a self-approval attempt", got)
	}
	if !slices.Contains(traceTypes(t, alice, task.TaskID), "auth.rejected") {
		t.Error("the self-approval attempt is not recorded as auth.rejected")
	}
	// Another approver decides from the task page and lands back on it.
	bob := newBrowserless(t, ts.url)
	bob.signIn("bob", identity.RoleApprover)
	if p := bob.get("/ui/tasks/" + task.TaskID); !strings.Contains(p.body, `value="approve"`) {
		t.Fatal("the task page offers another approver no approve button")
	}
	p = bob.post("/ui/approvals/"+approvalID, url.Values{"decision": {"approve"}, "next": {"task"}}, true)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/tasks/"+task.TaskID {
		t.Fatalf("approving from the task page: %d %s", p.status, p.header.Get("Location"))
	}
	if got := taskState(t, alice, task.TaskID); got != api.StateActive {
		t.Fatalf("task is %s after bob approved", got)
	}
	// A requester without the approver role cannot reach the inbox at all.
	r := newBrowserless(t, ts.url)
	r.signIn("dave", identity.RoleRequester)
	if p := r.get("/ui/inbox"); p.status != http.StatusForbidden {
		t.Errorf("inbox for a requester: %d, want 403", p.status)
	}
}

func TestTaskListFiltersAndTimeline(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	bob := ts.api(t, "bob", identity.RoleApprover)
	task := ts.openPending(t, alice, "Summarize Q3 invoices and mail the summary")
	other := ts.openPending(t, ts.api(t, "zed", identity.RoleRequester), "Another requester's task")
	if _, err := bob.Decide(context.Background(), task.TaskID, api.Decide{Decision: "approve", Reason: "quarter close"}); err != nil {
		t.Fatal(err)
	}
	agent := ts.agentFor(t, task.TaskID)
	a, err := agent.Authorize(context.Background(), api.Authorize{Tool: "payments.send", Operation: "send", Resource: "bank://acme/payouts", DataClass: "confidential"})
	if err != nil || a.Allow {
		t.Fatalf("out-of-scope call: %+v %v, want a denial", a, err)
	}

	parent := task.TaskID
	child, err := alice.OpenTask(context.Background(), api.OpenTask{Agent: testAgent, Intent: "Read one invoice", TTL: "5m", Parent: &parent,
		Scope: api.Scope{Tools: []string{"invoices.read"}, Resources: []string{"erp://invoices/2026-Q3/*"}, Operations: []string{"read"},
			DataClass: "confidential", Environments: []string{"prod"}}})
	if err != nil {
		t.Fatalf("opening a child task: %v", err)
	}

	b := newBrowserless(t, ts.url)
	b.signIn("alice", identity.RoleRequester)
	p := b.get("/ui/tasks?state=active")
	if !strings.Contains(p.body, task.TaskID) || strings.Contains(p.body, other.TaskID) {
		t.Errorf("state=active lists the wrong tasks")
	}
	// A requester lists only their own tasks; an auditor filters all.
	if p := b.get("/ui/tasks"); !strings.Contains(p.body, task.TaskID) || strings.Contains(p.body, other.TaskID) {
		t.Errorf("alice's task list shows another requester's task, or not her own")
	}
	aud := newBrowserless(t, ts.url)
	aud.signIn("dana", identity.RoleAuditor)
	p = aud.get("/ui/tasks?requester=zed")
	if strings.Contains(p.body, task.TaskID) || !strings.Contains(p.body, other.TaskID) {
		t.Errorf("requester=zed lists the wrong tasks")
	}
	if p := b.get("/ui/tasks?since=2999-01-01"); strings.Contains(p.body, task.TaskID) {
		t.Error("since in the future still lists tasks")
	}
	if p := b.get("/ui/tasks?since=yesterday"); p.status != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", p.status)
	}
	p = b.get("/ui/tasks/" + task.TaskID)
	for _, want := range []string{`data-type="task.requested"`, `data-type="approval.granted"`, `data-type="credential.issued"`, `data-type="action.denied"`, "payments.send"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("timeline lacks %s", want)
		}
	}
	// The child task's events are in the parent's timeline, marked as such.
	if !strings.Contains(p.body, "Child task requested") || !strings.Contains(p.body, `href="/ui/tasks/`+child.TaskID+`"`) {
		t.Error("the timeline does not show the child task")
	}
	if p := b.get("/ui/tasks/" + child.TaskID); !strings.Contains(p.body, `href="/ui/tasks/`+parent+`"`) {
		t.Error("the child task's page does not link its parent")
	}
	// Another requester's task is not found, as an unknown one, and its
	// evidence neither.
	for _, path := range []string{"/ui/tasks/" + other.TaskID, "/ui/tasks/" + other.TaskID + "/evidence"} {
		if p := b.get(path); p.status != http.StatusNotFound || strings.Contains(p.body, `id="timeline"`) || strings.Contains(p.body, "Another requester") {
			t.Errorf("%s for another requester: %d, want 404 without the task", path, p.status)
		}
	}
	// Complete through the console.
	b.get("/ui/tasks/" + task.TaskID)
	if p := b.post("/ui/tasks/"+task.TaskID+"/complete", nil, true); p.status != http.StatusSeeOther {
		t.Fatalf("complete: %d\n%s", p.status, p.body)
	}
	if got := taskState(t, alice, task.TaskID); got != api.StateCompleted {
		t.Fatalf("task is %s after complete", got)
	}
	// Someone else's task cannot be revoked by a plain requester: to her
	// it does not exist.
	if p := b.post("/ui/tasks/"+other.TaskID+"/revoke", nil, true); p.status != http.StatusNotFound {
		t.Errorf("revoking another requester's task: %d, want 404", p.status)
	}
	if got := taskState(t, ts.api(t, "root", identity.RoleAdmin), other.TaskID); got != api.StatePendingApproval {
		t.Errorf("the other task is %s after alice's revoke, want pending_approval", got)
	}
}

func TestLedgerAndPolicies(t *testing.T) {
	ts := startServer(t, nil)
	ts.openPending(t, ts.api(t, "alice", identity.RoleRequester), "Summarize Q3 invoices")
	b := newBrowserless(t, ts.url)
	b.signIn("dana", identity.RoleAuditor)
	p := b.get("/ui/ledger")
	if p.status != http.StatusOK || !strings.Contains(p.body, "No full verification") {
		t.Fatalf("ledger page: %d", p.status)
	}
	if p := b.post("/ui/ledger/verify", nil, true); p.status != http.StatusSeeOther {
		t.Fatalf("verify now: %d", p.status)
	}
	if p := b.get("/ui/ledger"); !strings.Contains(p.body, "The ledger verifies.") {
		t.Errorf("ledger page after verification lacks the result:\n%s", p.body)
	}
	p = b.get("/ui/policies")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="active-version"`) || !strings.Contains(p.body, "(active)") {
		t.Fatalf("policies page: %d", p.status)
	}
	// A requester may see neither.
	r := newBrowserless(t, ts.url)
	r.signIn("alice", identity.RoleRequester)
	for _, path := range []string{"/ui/ledger", "/ui/policies"} {
		if p := r.get(path); p.status != http.StatusForbidden {
			t.Errorf("%s for a requester: %d, want 403", path, p.status)
		}
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowserless(t, ts.url)
	b.signIn("bob", identity.RoleApprover)
	b.get("/ui/inbox")
	old := b.c.Jar.Cookies(mustURL(t, ts.url))
	if p := b.post("/ui/logout", nil, true); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	// Replaying the old cookie does not bring the session back.
	again := newBrowserless(t, ts.url)
	again.c.Jar.SetCookies(mustURL(t, ts.url), old)
	if p := again.get("/ui/inbox"); p.status != http.StatusSeeOther {
		t.Errorf("old cookie after sign-out: %d, want a redirect to sign in", p.status)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestInboxShowsTheBoundCall: each step-up card shows everything the
// approval is bound to, under its own approval ID: two calls with the same
// tool and arguments on different resources are two cards.
func TestInboxShowsTheBoundCall(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	opened := ts.openApproved(t, alice, "Summarize Q2 invoices", "carol")
	agent := ts.agentFor(t, opened.TaskID)
	ids := map[string]string{}
	for _, res := range []string{"erp://invoices/2026-Q2/9", "erp://payroll/executive-salaries"} {
		a, err := agent.Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res,
			Arguments: json.RawMessage(`{"id":9}`), DataClass: "internal"})
		if err != nil || !a.ApprovalRequired {
			t.Fatalf("%s: %+v %v, want a step-up", res, a, err)
		}
		ids[res] = a.ApprovalID
	}
	if ids["erp://invoices/2026-Q2/9"] == ids["erp://payroll/executive-salaries"] {
		t.Fatal("two resources were given one approval")
	}
	bob := newBrowserless(t, ts.url)
	bob.signIn("bob", identity.RoleApprover)
	page := bob.get("/ui/inbox").body
	for res, id := range ids {
		i := strings.Index(page, `id="approval-`+id+`"`)
		if i < 0 {
			t.Fatalf("no card for %s (%s)", res, id)
		}
		card := page[i:]
		card = card[:strings.Index(card, "</article>")]
		for _, want := range []string{"invoices.read", ">read<", res, ">internal<", "expires", `&#34;id&#34;: 9`} {
			if !strings.Contains(card, want) {
				t.Errorf("card %s does not show %q:\n%s", id, want, card)
			}
		}
	}
}

// TestLimitsShown: the approver sees a task's limits in the inbox; its
// page shows them with the calls counted against them, and a call refused
// at a limit in the timeline.
func TestLimitsShown(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	scope := confidential
	two, ten := int64(2), int64(10)
	scope.Limits = &api.Limits{Calls: &two, PerTool: map[string]int64{"invoices.*": 10}, PerMinute: &ten}
	opened, err := alice.OpenTask(ctx, api.OpenTask{Agent: testAgent, Intent: "Read two invoices", TTL: "15m", Scope: scope})
	if err != nil || opened.State != api.StatePendingApproval {
		t.Fatalf("opening: %+v %v", opened, err)
	}
	bob := newBrowserless(t, ts.url)
	bob.signIn("bob", identity.RoleApprover)
	inbox := bob.get("/ui/inbox").body
	i := strings.Index(inbox, `data-task="`+opened.TaskID+`"`)
	if i < 0 || !strings.Contains(inbox[i:], "calls 2, per_tool invoices.* 10, per_minute 10") {
		t.Fatalf("the inbox does not show the limits:\n%s", inbox)
	}
	if _, err := ts.api(t, "bob", identity.RoleApprover).Decide(ctx, opened.TaskID, api.Decide{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	agent := ts.agentFor(t, opened.TaskID)
	for i := range 3 {
		a, _ := agent.Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "internal"})
		if a.Allow != (i < 2) {
			t.Fatalf("call %d: %+v", i, a)
		}
	}
	b := newBrowserless(t, ts.url)
	b.signIn("alice", identity.RoleRequester)
	p := b.get("/ui/tasks/" + opened.TaskID).body
	for _, want := range []string{"calls 2 of 2, per_tool invoices.* 2 of 10, per_minute 10", "Action refused at a limit: invoices.read",
		"limits.calls 2, of task " + opened.TaskID} {
		if !strings.Contains(p, want) {
			t.Errorf("the task page lacks %q", want)
		}
	}
}

// TestApprovalPage: the page an agent's client sends its user to shows
// exactly that approval, to decide, to an approver who may decide it, and
// to no one else.
func TestApprovalPage(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	opened := ts.openApproved(t, alice, "Summarize Q2 invoices", "carol")
	a, err := ts.agentFor(t, opened.TaskID).Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read",
		Resource: "erp://invoices/2026-Q2/9", Arguments: json.RawMessage(`{"id":9}`), DataClass: "internal"})
	if err != nil || !a.ApprovalRequired {
		t.Fatalf("step-up: %+v %v", a, err)
	}
	bob := newBrowserless(t, ts.url)
	bob.signIn("bob", identity.RoleApprover)
	p := bob.get("/ui/approvals/" + a.ApprovalID)
	for _, want := range []string{`id="approval-` + a.ApprovalID + `"`, "erp://invoices/2026-Q2/9", `action="/ui/approvals/` + a.ApprovalID + `"`} {
		if p.status != http.StatusOK || !strings.Contains(p.body, want) {
			t.Fatalf("approval page: %d, lacks %q", p.status, want)
		}
	}
	if p := bob.get("/ui/approvals/apr_nosuchapproval"); p.status != http.StatusNotFound {
		t.Errorf("an unknown approval: %d, want 404", p.status)
	}
	req := newBrowserless(t, ts.url)
	req.signIn("alice", identity.RoleRequester)
	if p := req.get("/ui/approvals/" + a.ApprovalID); p.status != http.StatusForbidden || strings.Contains(p.body, "2026-Q2/9") {
		t.Errorf("a requester: %d, want 403 without the call", p.status)
	}
	if p := bob.post("/ui/approvals/"+a.ApprovalID, url.Values{"decision": {"approve"}}, true); p.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", p.status, p.body)
	}
	if p := bob.get("/ui/approvals/" + a.ApprovalID); p.status != http.StatusNotFound || !strings.Contains(p.body, "not waiting for your decision") {
		t.Errorf("after deciding: %d", p.status)
	}
}
