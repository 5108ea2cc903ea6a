package evidence

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// leafAt is a canonical leaf of a task event, with its links.
func leafAt(t *testing.T, v int, typ, task string, prev, deleg int, data string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("{")
	if data != "" {
		b.WriteString(`"data":` + data + `,`)
	}
	if deleg >= 0 {
		fmt.Fprintf(&b, `"delegation":%d,`, deleg)
	}
	if prev >= 0 {
		fmt.Fprintf(&b, `"prev":%d,`, prev)
	}
	if task != "" {
		b.WriteString(`"task_id":"` + task + `",`)
	}
	fmt.Fprintf(&b, `"time":"2026-11-25T21:00:00.000000000Z","type":"%s","v":%d}`, typ, v)
	return b.String()
}

// chainVerifier is a verifier holding the given events, as readEvents
// leaves it, for the completeness check alone.
func chainVerifier(t *testing.T, m Manifest, leaves map[uint64]string) *verifier {
	t.Helper()
	var lines []string
	for i := uint64(0); i < 64; i++ {
		if l, ok := leaves[i]; ok {
			lines = append(lines, fmt.Sprintf(`{"index":%d,"event":%s}`, i, l))
		}
	}
	m.Events = len(lines)
	v := &verifier{files: map[string][]byte{EventsPath: []byte(strings.Join(lines, "\n") + "\n")}, rep: &Report{Failures: []Failure{}}, bad: map[uint64]bool{}, m: m}
	v.readEvents()
	if len(v.rep.Failures) > 0 {
		t.Fatalf("events: %v", v.rep.Failures)
	}
	return v
}

func TestCompletenessStatuses(t *testing.T) {
	req, act, done := "task.requested", "action.authorized", "task.completed"
	from := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		m        Manifest
		leaves   map[uint64]string
		status   string
		failure  string // part of the first failure; "" for none
		missing  []uint64
		complete bool // verified with RequireComplete, still OK
	}{
		{"ended", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 4: leafAt(t, 2, act, "a", 1, -1, ""), 9: leafAt(t, 2, done, "a", 4, -1, ""),
		}, StatusComplete, "", nil, true},
		{"live", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 4: leafAt(t, 2, act, "a", 1, -1, ""),
		}, StatusCompleteToNewest, "", nil, false},
		{"a link's event left out", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 9: leafAt(t, 2, done, "a", 4, -1, ""),
		}, StatusIncomplete, "event 4 of task a is not in the bundle: event 9 names it", []uint64{4}, false},
		{"left out by a window", Manifest{Tasks: []string{"a"}, Window: &Window{From: &from}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 9: leafAt(t, 2, done, "a", 4, -1, ""),
		}, StatusIncomplete, "", []uint64{4}, false},
		{"written before chains", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 1, req, "a", -1, -1, ""), 4: leafAt(t, 1, act, "a", -1, -1, ""), 9: leafAt(t, 2, done, "a", 4, -1, ""),
		}, StatusUnchained, "", nil, false},
		{"a link to another task's event", Manifest{Tasks: []string{"a", "b"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 2: leafAt(t, 2, req, "b", -1, -1, ""), 9: leafAt(t, 2, done, "a", 2, -1, ""),
		}, StatusIncomplete, "event 9 of task a names event 2, of task \"b\"", nil, false},
		{"a link skips an event", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 4: leafAt(t, 2, act, "a", 1, -1, ""), 9: leafAt(t, 2, done, "a", 1, -1, ""),
		}, StatusIncomplete, "event 4 of task a is not on the task's chain", nil, false},
		{"a child and its delegation", Manifest{Tasks: []string{"a", "c"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 2: leafAt(t, 2, req, "c", -1, 3, ""),
			3: leafAt(t, 2, "task.delegated", "a", 1, -1, `{"child_task_id":"c"}`),
			5: leafAt(t, 2, done, "c", 2, -1, ""), 6: leafAt(t, 2, done, "a", 3, -1, ""),
		}, StatusComplete, "", nil, true},
		{"a child's delegation left out", Manifest{Tasks: []string{"c"}, Ancestors: []string{"a"}}, map[uint64]string{
			2: leafAt(t, 2, req, "c", -1, 3, ""), 5: leafAt(t, 2, done, "c", 2, -1, ""),
		}, StatusIncomplete, "event 3, the task.delegated that opened task c", []uint64{3}, false},
		{"a delegation to a task left out", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 3: leafAt(t, 2, "task.delegated", "a", 1, -1, `{"child_task_id":"c"}`),
			6: leafAt(t, 2, done, "a", 3, -1, ""),
		}, StatusIncomplete, "event 3 delegates to task c, which is not among the bundle's tasks", nil, false},
		{"a credential of an ended task unrevoked", Manifest{Tasks: []string{"a"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 4: strings.Replace(leafAt(t, 2, "credential.issued", "a", 1, -1, ""), `"prev"`, `"jti":"j1","prev"`, 1),
			9: leafAt(t, 2, done, "a", 4, -1, ""),
		}, StatusIncomplete, "the revocation of its credential j1 is not in the bundle", nil, false},
		{"no event of a task", Manifest{Tasks: []string{"a", "c"}}, map[uint64]string{
			1: leafAt(t, 2, req, "a", -1, -1, ""), 6: leafAt(t, 2, done, "a", 1, -1, ""),
		}, StatusIncomplete, "the bundle holds no event of its task c", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, require := range []bool{false, true} {
				v := chainVerifier(t, tt.m, tt.leaves)
				v.completeness(require)
				c := v.rep.Completeness
				if c == nil || c.Status != tt.status || fmt.Sprint(c.Missing) != fmt.Sprint(append([]uint64{}, tt.missing...)) {
					t.Fatalf("completeness %+v, want status %s, missing %v", c, tt.status, tt.missing)
				}
				var got string
				if len(v.rep.Failures) > 0 {
					got = v.rep.Failures[0].Message
				}
				switch {
				case require && !tt.complete && len(v.rep.Failures) == 0:
					t.Errorf("required complete: no failure")
				case require:
				case tt.failure == "" && got != "":
					t.Errorf("failure %q, want none", got)
				case !strings.Contains(got, tt.failure):
					t.Errorf("failure %q, want …%s…", got, tt.failure)
				}
			}
		})
	}
}
