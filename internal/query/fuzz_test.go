package query_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/query"
)

// FuzzEventsFilter runs arbitrary filter values through the index: every
// value is a bound parameter or a LIKE pattern, so a query either answers
// with events that match or is refused as invalid, never fails otherwise.
func FuzzEventsFilter(f *testing.F) {
	e := newLedger(f)
	e.story(f)
	ix, err := query.New(context.Background(), query.Config{DB: e.store.DB(), Store: e.store})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"invoices.read", "invoices.*", "%", "_", `\`, "'; DROP TABLE query_events; --", "*", "erp://invoices/2026-Q3/17"} {
		f.Add(s, s, "5")
	}
	f.Fuzz(func(t *testing.T, tool, resource, after string) {
		p, err := ix.Events(context.Background(), query.Filter{Tool: tool, Resource: resource, After: after, Limit: 50})
		if err != nil {
			if !errors.Is(err, query.ErrInvalid) {
				t.Fatalf("Events(%q, %q, %q): %v", tool, resource, after, err)
			}
			return
		}
		for _, ev := range p.Events {
			if tool != "" && !strings.Contains(tool, "*") && ev.Tool != tool {
				t.Fatalf("tool %q matched event with tool %q", tool, ev.Tool)
			}
			if resource != "" && !strings.Contains(resource, "*") && ev.Resource != resource {
				t.Fatalf("resource %q matched event with resource %q", resource, ev.Resource)
			}
		}
	})
}
