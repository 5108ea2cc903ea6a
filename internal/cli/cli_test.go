package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

// TestMain lets the test binary run as the writ command inside scripts, the
// way cmd/writ does: interrupts cancel the context so that a backgrounded
// server shuts down gracefully on `kill -INT`.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"writ": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := Main(ctx, os.Args[1:], StdIO())
			stop()
			os.Exit(code)
		},
	})
}

// TestScripts runs the CLI scenarios in testdata/script. Each script gets a
// free loopback port in $PORT for a server it may start in the background,
// and [pg] holds where PostgreSQL is at hand.
func TestScripts(t *testing.T) {
	p := serverScripts("testdata/script", map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"pgdsn": cmdPgDSN,
	})
	p.Condition = scriptCondition
	testscript.Run(t, p)
}

// scriptPort is the loopback port a script's server listens on. A script
// names its server's URL before the server starts, so the server cannot
// pick the port itself.
func scriptPort() (string, error) {
	port, err := testkit.FreePort()
	return strconv.Itoa(port), err
}

// cmdWaitReady waits until GET URL/readyz answers 200 (up to 20 seconds).
//
//	waitready URL
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitready URL")
	}
	c := &http.Client{Timeout: time.Second}
	err := testkit.Poll(20*time.Second, func() error {
		resp, err := c.Get(strings.TrimRight(args[0], "/") + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s not ready after 20s: %v", args[0], err)
	}
}

// cmdEnvFile sets an environment variable to a file's contents, trimmed;
// with `cp stdout FILE` it carries one command's output into the next.
//
//	envfile NAME FILE
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile NAME FILE")
	}
	v := strings.TrimSpace(ts.ReadFile(args[1]))
	if v == "" {
		ts.Fatalf("%s is empty", args[1])
	}
	ts.Setenv(args[0], v)
}

// TestFlagHelpPrintedOnce checks that --help prints a command's usage once.
func TestFlagHelpPrintedOnce(t *testing.T) {
	out, errs, code := runWrit(t, "ledger", "verify", "--help")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if n := strings.Count(out, "Usage: writ ledger verify"); n != 1 {
		t.Errorf("usage printed %d times:\n%s", n, out)
	}
}

// TestFlagErrorKeepsStdoutClean checks that a flag mistake writes only the
// error and hint, on stderr: stdout of a failed command stays empty, so a
// pipeline never takes usage text for output.
func TestFlagErrorKeepsStdoutClean(t *testing.T) {
	for _, args := range [][]string{
		{"ledger", "verify", "--bogus"},
		{"ledger", "append", "--server"},
		{"server", "--nope"},
	} {
		out, errs, code := runWrit(t, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "writ: error: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, empty stdout, an error", args, code, out, errs)
		}
	}
}

// TestExitStatus pins the exit-status contract: 0 success, 1 failure, 2
// usage mistake.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"version"}, 0},
		{[]string{"help"}, 0},
		{[]string{}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"ledger", "frobnicate"}, 2},
		{[]string{"ledger", "proof"}, 2},
		{[]string{"ledger", "proof", "-1", "--data-dir", dir}, 2},
		{[]string{"ledger", "proof", "01", "--data-dir", dir}, 2},
		{[]string{"ledger", "verify", "-o", "yaml", "--data-dir", dir}, 2},
		{[]string{"ledger", "verify", "extra", "--data-dir", dir}, 2},
		{[]string{"ledger", "erase", "0", "out", "--data-dir", dir}, 2},
		{[]string{"ledger", "append", "-o", "xml", "--data-dir", dir}, 2},
		{[]string{"ledger", "verify", "--data-dir", dir + "/missing"}, 1},
		{[]string{"ledger", "key", "--data-dir", dir + "/missing"}, 1},
	}
	for _, tt := range tests {
		out, errs, code := runWrit(t, tt.args...)
		if code != tt.code {
			t.Errorf("writ %s: exit %d, want %d; stdout %q stderr %q", strings.Join(tt.args, " "), code, tt.code, out, errs)
			continue
		}
		if code != 0 && !strings.Contains(errs, "writ: error: ") {
			t.Errorf("writ %s: exit %d without an error line: %q", strings.Join(tt.args, " "), code, errs)
		}
	}
	if _, errs, _ := runWrit(t, "ledger", "verify", "--data-dir", dir+"/missing"); !strings.Contains(errs, "writ: hint: ") {
		t.Errorf("a missing data directory gives no hint: %q", errs)
	}
}

// runWritIn runs the CLI in process with stdin.
func runWritIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb strings.Builder
	code = Main(context.Background(), args, IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return out.String(), errb.String(), code
}

// openDir opens the data directory at dir for reading; the caller closes it.
func openDir(t *testing.T, dir string) *datadir.Dir {
	t.Helper()
	d, err := datadir.Open(context.Background(), dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// scanDir calls fn with every event of the data directory at dir, in index
// order, and fails the test on any error.
func scanDir(t *testing.T, dir string, fn func(ledger.Entry) error) {
	t.Helper()
	d := openDir(t, dir)
	defer d.Close()
	err := d.Store.ScanLeaves(context.Background(), 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		return fn(e)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ledgerTaskIDs reads the task IDs of every event in a data directory, in
// index order.
func ledgerTaskIDs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	scanDir(t, dir, func(e ledger.Entry) error {
		ids = append(ids, e.Event.TaskID)
		return nil
	})
	return ids
}

// TestAppendStopsAtBadLine checks the promise of `writ ledger append`: when a
// line fails, the lines before it were appended and nothing after it was,
// so the user can fix that line and resume from it.
func TestAppendStopsAtBadLine(t *testing.T) {
	var in strings.Builder
	for i := range 200 {
		typ := "import.ok"
		if i == 100 {
			typ = "nope"
		}
		fmt.Fprintf(&in, "{\"type\":%q,\"task_id\":\"%d\"}\n", typ, i)
	}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			out, errs, code := runWritIn(t, in.String(), "ledger", "append", "--data-dir", dir, "-o", format)
			if code != 1 || !strings.Contains(errs, "writ: error: line 101: ") {
				t.Fatalf("exit %d, stderr %q; want exit 1 at line 101", code, errs)
			}
			if n := strings.Count(out, "\n"); n != 100 {
				t.Errorf("printed %d indexes, want 100", n)
			}
			var after []int
			for _, id := range ledgerTaskIDs(t, dir) {
				if n, err := strconv.Atoi(id); err == nil && n > 100 {
					after = append(after, n+1)
				}
			}
			if len(after) > 0 {
				t.Errorf("%d lines after the failing line 101 were appended, such as line %d", len(after), after[0])
			}
		})
	}
}

// TestAppendKeepsInputOrder checks that line k of the input gets a smaller
// index than line k+1, however the lines are chunked.
func TestAppendKeepsInputOrder(t *testing.T) {
	var in strings.Builder
	var want []string
	for i := range 3000 {
		id := strconv.Itoa(i)
		want = append(want, id)
		fmt.Fprintf(&in, "{\"type\":\"import.ok\",\"task_id\":%q}\n", id)
	}
	dir := t.TempDir()
	if _, errs, code := runWritIn(t, in.String(), "ledger", "append", "--data-dir", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []string
	for _, id := range ledgerTaskIDs(t, dir) {
		if id != "" {
			got = append(got, id)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger order differs from input order (-input +ledger):\n%s", diff)
	}
}
