package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the README's first command to its end and checks that
// every step of the walkthrough happened and that the ledger it left
// verifies.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	var out, errb strings.Builder
	code := Main(context.Background(), []string{"quickstart", "--exit", "--data-dir", dir, "--listen", "127.0.0.1:0"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	steps := []string{
		`\[1\] alice \(requester\) opens a low-risk task[^\n]*\n    ✓ task tsk_\w+ is active at once`,
		`\[2\] alice opens a task that touches confidential data in prod\n    ✓ task tsk_\w+ is pending approval`,
		`\[3\] bob \(approver\) approves it\n    ✓ approval apr_\w+ recorded; task tsk_\w+ is active`,
		`\[4\] the agent spiffe://writ.dev/agent/summarizer exchanges its JWT-SVID[^\n]*\n    ✓ token issued for task:tsk_\w+, valid \d+s`,
		`\[5\] the agent reads an invoice: in scope\n    ✓ allowed: action act_\w+`,
		`    ✓ result of act_\w+ recorded\n`,
		`\[6\] the agent tries a payment[^\n]*\n    ✓ denied: `,
		`\[7\] the agent reads a Q2 invoice[^\n]*\n    ✓ approval required: apr_\w+\n    ✓ bob approves step-up apr_\w+[^\n]*\n    ✓ the retried call is allowed once: action act_\w+`,
		`\[8\] the agent records the step-up action's result\n    ✓ result of act_\w+ recorded at ledger index \d+`,
		`\[9\] alice completes the task\n    ✓ task tsk_\w+ completed; every credential of it is revoked`,
		`\[10\] the agent tries its token again\n    ✓ refused: `,
		`\[11\] alice reconstructs the task[^\n]*\n\ntrace of task tsk_\w+`,
		` action\.authorized +spiffe://writ\.dev/agent/summarizer +allow sha256:[0-9a-f]{12} +invoices\.read erp://invoices/2026-Q3/17 `,
		` action\.denied +spiffe://writ\.dev/agent/summarizer +deny `,
		` approval\.granted +\S*bob `,
		` action\.completed `,
		` task\.completed +\S*alice `,
		` credential\.revoked `,
		` auth\.rejected `,
		`\n(\d+)/(\d+) events verified`,
		`\[12\] writ ledger verify --data-dir `,
		`ok   projections`,
		`\nledger verified: \d+ events\n`,
		`\nquickstart complete\.\n$`,
	}
	s := out.String()
	for _, re := range steps {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("output lacks %q", re)
		}
	}
	if strings.Contains(s, "FAIL") {
		t.Errorf("verification printed FAIL")
	}
	if m := regexp.MustCompile(`\n(\d+)/(\d+) events verified`).FindStringSubmatch(s); m != nil && m[1] != m[2] {
		t.Errorf("trace: only %s of %s events verified", m[1], m[2])
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", s, errb.String())
	}
	// What it left verifies with the command itself.
	if _, errs, code := runWrit(t, "ledger", "verify", "--data-dir", dir); code != 0 {
		t.Errorf("writ ledger verify: exit %d: %s", code, errs)
	}
}
