package console

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
)

// TestRenderShowsHiddenCharacters: a task page whose intent, tool,
// resource, reasons and agent hold bidirectional overrides, isolates and
// other control or format characters shows each as a visible marker, and
// none of them reaches the page as a character.
func TestRenderShowsHiddenCharacters(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	c := &Console{log: slog.New(slog.DiscardHandler), now: time.Now, pages: pages}
	task := api.Task{TaskID: "tsk_1", State: api.StateActive, Requester: "oidc:idp#alice",
		Agent:   "spiffe://example.org/agent/\u202egnp.exe",
		Intent:  "Read the invoices \u202eand wire 1,000,000 to account 42\u202c then stop",
		Scope:   api.Scope{Tools: []string{"invoices.\u2066read\u2069"}, Resources: []string{"erp://invoices/\u200b*"}, Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}},
		Reasons: []string{"policy says \u2067yes\u2069", "nul\x00 and esc\x1b"},
	}
	w := httptest.NewRecorder()
	c.render(w, httptest.NewRequest("GET", "/ui/tasks/tsk_1", nil), nil, 200, "task", "Task", "tasks", taskBody{Task: task})
	page := w.Body.String()
	for _, want := range []string{
		"Read the invoices ⟨U+202E⟩and wire 1,000,000 to account 42⟨U+202C⟩ then stop",
		"agent/⟨U+202E⟩gnp.exe", "invoices.⟨U+2066⟩read⟨U+2069⟩", "erp://invoices/⟨U+200B⟩*",
		"policy says ⟨U+2067⟩yes⟨U+2069⟩", "nul⟨U+FFFD⟩ and esc⟨U+001B⟩", // html/template turns NUL into U+FFFD
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, r := range []string{"\u202e", "\u202c", "\u2066", "\u2067", "\u2069", "\u200b", "\x00", "\x1b"} {
		if strings.Contains(page, r) {
			t.Errorf("the page holds %+q as a character", r)
		}
	}
}
