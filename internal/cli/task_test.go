package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/testkit"
)

// TestTaskScripts runs the task, approval, token and exec scenarios in
// testdata/task against a real server each script starts in the background.
func TestTaskScripts(t *testing.T) {
	testscript.Run(t, serverScripts("testdata/task", nil))
}

// serverScripts are the parameters of script suites that start a server in
// the background: a free PORT, no WRIT_* settings leaking in from outside,
// and the commands that wait for the server and read its answers, plus
// extra.
func serverScripts(dir string, extra map[string]func(ts *testscript.TestScript, neg bool, args []string)) testscript.Params {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"waitready": cmdWaitReady,
		"envfile":   cmdEnvFile,
		"jsonfield": cmdJSONField,
		"waittask":  cmdWaitTask,
	}
	maps.Copy(cmds, extra)
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			port, err := scriptPort()
			if err != nil {
				return err
			}
			env.Setenv("PORT", port)
			for _, k := range []string{"WRIT_CONFIG", "WRIT_DATA_DIR", "WRIT_TOKEN", "WRIT_LISTEN", "WRIT_URL"} {
				env.Setenv(k, "")
			}
			return nil
		},
		Cmds: cmds,
	}
}

// cmdJSONField sets an environment variable to a string (or whole number) field of a JSON
// file, found by a dotted path whose numeric parts index arrays.
//
//	jsonfield NAME FILE PATH
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonfield NAME FILE PATH")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[1])), &v); err != nil {
		ts.Fatalf("%s: %v", args[1], err)
	}
	for _, k := range strings.Split(args[2], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("%s: no element %s", args[2], k)
			}
			v = x[i]
		default:
			ts.Fatalf("%s: %s is not in an object or array", args[2], k)
		}
	}
	s, ok := v.(string)
	if n, isNum := v.(float64); isNum && n >= 0 && n == float64(int64(n)) {
		s, ok = strconv.FormatInt(int64(n), 10), true
	}
	if !ok || s == "" {
		ts.Fatalf("%s in %s is not a non-empty string or a whole number: %v", args[2], args[1], v)
	}
	ts.Setenv(args[0], s)
}

// cmdWaitTask waits (up to 20 seconds) until the server at $WRIT_URL lists
// a task in state, asking with $WRIT_TOKEN, and sets NAME to the newest;
// with INTENT, the newest with that intent, so that a task of an earlier
// step still in that state is never taken for it.
//
//	waittask STATE NAME [INTENT]
func cmdWaitTask(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waittask STATE NAME [INTENT]")
	}
	cl := client.New(ts.Getenv("WRIT_URL"), ts.Getenv("WRIT_TOKEN"))
	err := testkit.Poll(20*time.Second, func() error {
		tasks, err := cl.ListTasks(context.Background(), args[0])
		if err != nil {
			ts.Fatalf("listing %s tasks: %v", args[0], err)
		}
		if len(args) == 3 {
			tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.Intent != args[2] })
		}
		if len(tasks) == 0 {
			return fmt.Errorf("no %s task after 20s", args[0])
		}
		ts.Setenv(args[1], tasks[len(tasks)-1].TaskID)
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// TestScopeRequest checks how the scope flags become the body of
// POST /v1/tasks, and which mistakes are usage errors.
func TestScopeRequest(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.json"
	os.WriteFile(good, []byte(`{"tools":["a.*"],"resources":["r://*"],"operations":["read"],"data_class":"internal","environments":["dev"]}`), 0o600)
	typo := dir + "/typo.json"
	os.WriteFile(typo, []byte(`{"tool":["a.*"]}`), 0o600)
	two := dir + "/two.json"
	os.WriteFile(two, []byte(`{"tools":["a"]} {}`), 0o600)

	full := []string{"--agent", "ag", "--intent", "do it", "--tools", "a.*, b", "--resources", "r://*", "--operations", "read,,send",
		"--data-class", "internal", "--environments", "dev"}
	tests := []struct {
		name    string
		args    []string
		want    api.OpenTask
		wantErr string
		usage   bool
	}{
		{name: "flags", args: full, want: api.OpenTask{Agent: "ag", Intent: "do it", TTL: "15m", Scope: api.Scope{
			Tools: []string{"a.*", "b"}, Resources: []string{"r://*"}, Operations: []string{"read", "send"}, DataClass: "internal", Environments: []string{"dev"}}}},
		{name: "file and parent", args: []string{"--agent", "ag", "--intent", "x", "--scope-file", good, "--parent", "tsk_p", "--ttl", "1h"},
			want: api.OpenTask{Agent: "ag", Intent: "x", TTL: "1h", Parent: ptr("tsk_p"), Scope: api.Scope{
				Tools: []string{"a.*"}, Resources: []string{"r://*"}, Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}}}},
		{name: "nothing", args: nil, wantErr: "missing --agent, --data-class, --environments, --intent, --operations, --resources, --tools", usage: true},
		{name: "bad ttl", args: append(append([]string{}, full...), "--ttl", "soon"), wantErr: `--ttl "soon": not a duration`, usage: true},
		{name: "file and flag", args: []string{"--agent", "a", "--intent", "x", "--scope-file", good, "--tools", "b"}, wantErr: "--scope-file and --tools both given", usage: true},
		{name: "unknown key", args: []string{"--agent", "a", "--intent", "x", "--scope-file", typo}, wantErr: `unknown field "tool"`},
		{name: "two values", args: []string{"--agent", "a", "--intent", "x", "--scope-file", two}, wantErr: "more than one JSON value"},
		{name: "missing file", args: []string{"--agent", "a", "--intent", "x", "--scope-file", dir + "/nope.json"}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &command{name: "open"}
			fs := newFlags(c, IO{Stdout: &strings.Builder{}, Stderr: &strings.Builder{}})
			sf := addScopeFlags(fs)
			if _, err := parseFlags(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := sf.request("")
			if tt.wantErr != "" {
				var u *usageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if isUsage := asUsage(err, &u); isUsage != tt.usage {
					t.Errorf("usage error %v, want %v", isUsage, tt.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func asUsage(err error, u **usageError) bool {
	x, ok := err.(*usageError)
	*u = x
	return ok
}
