package console_test

import (
	"net/http"
	"testing"

	"github.com/writhq/writ/internal/identity"
)

// BenchmarkPages measures rendering the main pages for a signed-in person
// over HTTP against a real server holding 200 tasks, one with a timeline of
// about a dozen events.
func BenchmarkPages(b *testing.B) {
	ts := startServer(b, nil)
	alice := ts.api(b, "alice", identity.RoleRequester)
	var last string
	for i := 0; i < 200; i++ {
		last = ts.openPending(b, alice, "Summarize Q3 invoices").TaskID
	}
	for _, bc := range []struct {
		name, person, path string
		roles              []identity.Role
	}{
		{"inbox", "bob", "/ui/inbox", []identity.Role{identity.RoleApprover}},
		{"tasks", "alice", "/ui/tasks", []identity.Role{identity.RoleRequester}},
		{"task", "alice", "/ui/tasks/" + last, []identity.Role{identity.RoleRequester}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newBrowserless(b, ts.url)
			c.signIn(bc.person, bc.roles...)
			b.ReportAllocs()
			for b.Loop() {
				if p := c.get(bc.path); p.status != http.StatusOK {
					b.Fatalf("%s: %d", bc.path, p.status)
				}
			}
		})
	}
}
