package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// complianceWorld is a ledger whose readiness answers are known: one task
// run through (approved, calls allowed and denied, completed), one left
// pending approval, one denied by policy, a refused credential, a legal
// hold — and two events forged around writ: the pending task activated
// without its approval, and the completed task's credential used after it
// was revoked.
type complianceWorld struct {
	e                *env
	done, pending    string
	forgedActivation uint64
	forgedUse        uint64
	skipped          func() ([]task.Skipped, int)
}

func newComplianceWorld(t *testing.T) *complianceWorld {
	e := newEnv(t, "prod")
	ctx := context.Background()
	w := &complianceWorld{e: e}
	w.done = e.story(2)
	p, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "pay the invoices", Scope: scope("confidential", "prod"), TTL: "15m"})
	if err != nil || p.State != api.StatePendingApproval {
		t.Fatalf("pending task: %+v %v", p, err)
	}
	w.pending = p.TaskID
	if d, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "elsewhere", Scope: scope("internal", "dev"), TTL: "15m"}); err != nil || d.State != api.StateDenied {
		t.Fatalf("denied task: %+v %v", d, err)
	}
	if err := e.svc.RecordRejection(ctx, task.Rejection{TaskID: w.done, Agent: agent, Reason: "invalid_token", Detail: "signature does not verify"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Hold(ctx, human("oidc:test#audrey", identity.RoleAuditor), w.done, "litigation 2026-14"); err != nil {
		t.Fatal(err)
	}
	done, _ := e.svc.Get(w.done)
	data := func(v any) []byte {
		b, err := jcs.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	w.forgedActivation, err = e.led.Append(ctx, ledger.Event{Type: ledger.TypeTaskActivated, TaskID: w.pending, Principal: alice.ID, Agent: agent,
		Data: data(event.TaskActivated{TTL: "15m0s", ExpiresAt: time.Now().Add(15 * time.Minute)})})
	if err != nil {
		t.Fatal(err)
	}
	w.forgedUse, err = e.led.Append(ctx, ledger.Event{Type: ledger.TypeActionAuthorized, TaskID: w.done, Principal: alice.ID, Agent: agent,
		JTI: done.Credentials[0], DecisionID: "dec_forged", PolicyVersion: e.pol.Version(),
		Data: data(event.ActionDecided{ActionID: "act_forged", Tool: "invoices.read", Effect: "allow", PolicyIDs: []string{}})})
	if err != nil {
		t.Fatal(err)
	}
	// The task state as the server rebuilds it at start, which skips the
	// two forged events.
	st := task.NewState()
	if err := e.store.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		ent, err := ledger.ParseLeaf(i, leaf)
		if err == nil {
			st.Replay(ent)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.skipped = st.Skipped
	return w
}

func (w *complianceWorld) report(t *testing.T, opts evidence.ComplianceOptions) *evidence.ComplianceReport {
	t.Helper()
	src := evidence.ComplianceSource{Store: w.e.store, Index: w.e.index(), VerifierKey: w.e.vkey, Skipped: w.skipped}
	rep, err := evidence.Compliance(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestComplianceReport(t *testing.T) {
	w := newComplianceWorld(t)
	size, err := w.e.store.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rep *evidence.ComplianceReport
	testkit.Eventually(t, 10*time.Second, func() error {
		rep = w.report(t, evidence.ComplianceOptions{})
		if !rep.Ledger.CoversWindow {
			return fmt.Errorf("the latest checkpoint (%d, verified %v) does not cover the window yet", rep.Ledger.CheckpointSize, rep.Ledger.CheckpointVerified)
		}
		return nil
	})
	done, _ := w.e.svc.Get(w.done)
	if rep.Events.Count != int(size) || *rep.FirstIndex != 0 || *rep.LastIndex != size-1 {
		t.Errorf("window: %d events, %v to %v; the ledger has %d", rep.Events.Count, *rep.FirstIndex, *rep.LastIndex, size)
	}
	if l := rep.Approvals.Lacking; len(l) != 1 || l[0].Index != w.forgedActivation || l[0].TaskID != w.pending ||
		!strings.Contains(l[0].Reason, "0 of the 1 approvals") {
		t.Errorf("lacking approvals: %+v", l)
	}
	if o := rep.Credentials.Outlived; len(o) != 1 || o[0].Index != w.forgedUse || o[0].JTI != done.Credentials[0] ||
		!strings.Contains(o[0].Reason, "after its revocation") {
		t.Errorf("outlived credentials: %+v", o)
	}
	for name, got := range map[string][2]int{
		"approvals requested": {rep.Approvals.Requested.Count, 2}, "approvals granted": {rep.Approvals.Granted.Count, 1},
		"credentials issued": {rep.Credentials.Issued.Count, 1}, "credentials revoked": {rep.Credentials.Revoked.Count, 1},
		"calls denied": {rep.Refusals.ActionsDenied.Count, 1}, "tasks denied": {rep.Refusals.TasksDenied.Count, 1},
		"refused credentials": {rep.Refusals.AuthRejected.Count, 1}, "unapplied": {rep.Ledger.Unapplied.Count, 2},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: %d, want %d", name, got[0], got[1])
		}
	}
	if !slices.Equal(rep.Ledger.Unapplied.Events, []uint64{w.forgedActivation, w.forgedUse}) {
		t.Errorf("unapplied events: %v", rep.Ledger.Unapplied.Events)
	}
	if !rep.Ledger.CheckpointVerified || rep.Ledger.Witnesses != nil {
		t.Errorf("ledger status: %+v", rep.Ledger)
	}
	found := false
	for _, a := range rep.StandingAccess.Agents {
		if a.Agent == agent {
			found = slices.Contains(a.UnusedTools, "mail.send") && slices.Contains(a.Tasks.Events, done.RequestedIndex)
		}
	}
	if !found {
		t.Errorf("standing access: %+v", rep.StandingAccess.Agents)
	}

	// Each control counts the window's events of its types.
	byID := map[string]evidence.ControlFigure{}
	for _, c := range rep.Controls {
		byID[c.Framework+" "+c.ID] = c
	}
	if c := byID["NIST CSF 2.0 RS.AN-06"]; c.Status != "evidenced" || c.Records.Count != 1 {
		t.Errorf("RS.AN-06 (the hold): %+v", c)
	}
	if c := byID["NIST CSF 2.0 PR.PS-04"]; c.Records.Count != int(size) {
		t.Errorf("PR.PS-04 (every event): %d records", c.Records.Count)
	}
	if c := byID["OWASP Non-Human Identities Top 10 (2025) NHI6:2025"]; c.Status != "not established by writ" {
		t.Errorf("NHI6: %+v", c)
	}
	if c := byID["EU AI Act Art. 14"]; c.Status != "evidenced" || c.Records.Count != 3 {
		t.Errorf("Art. 14 (two approval requests and a grant): %+v", c)
	}

	// Narrowed to frameworks, and to a window before everything.
	some := w.report(t, evidence.ComplianceOptions{Frameworks: []string{"nist-csf", "OWASP Non-Human Identities Top 10 (2025)"}})
	if !slices.Equal(some.Frameworks, []string{"NIST CSF 2.0", "OWASP Non-Human Identities Top 10 (2025)"}) {
		t.Errorf("frameworks: %v", some.Frameworks)
	}
	var notEst []string
	for _, c := range some.NotEstablished {
		notEst = append(notEst, c.ID)
	}
	if !slices.Equal(notEst, []string{"DE.AE-08", "NHI3:2025", "NHI6:2025"}) {
		t.Errorf("not established: %v", notEst)
	}
	before := w.report(t, evidence.ComplianceOptions{From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(-24 * time.Hour)})
	if before.Events.Count != 0 || len(before.Approvals.Lacking) != 0 || len(before.Credentials.Outlived) != 0 || before.FirstIndex != nil {
		t.Errorf("an empty window: %+v", before)
	}
	src := evidence.ComplianceSource{Store: w.e.store, Index: w.e.index(), VerifierKey: w.e.vkey}
	if _, err := evidence.Compliance(context.Background(), src, evidence.ComplianceOptions{Frameworks: []string{"iso-27001"}}); !errors.Is(err, query.ErrInvalid) {
		t.Errorf("an unknown framework: %v", err)
	}

	// The page is self-contained and names the findings' events.
	page := string(evidence.ComplianceHTML(rep))
	for _, want := range []string{"Content-Security-Policy", "Readiness report", fmt.Sprintf(`<td class="bad">%d</td>`, w.forgedActivation),
		fmt.Sprintf(`<td class="bad">%d</td>`, w.forgedUse), "NHI6:2025 Insecure Cloud Deployment Configurations"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
}
