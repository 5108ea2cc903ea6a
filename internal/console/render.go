package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/printable"
)

// pageFiles are the templates rendered inside layout.html, by page name.
var pageFiles = []string{"login", "error", "inbox", "approval", "tasks", "task", "ledger", "policies", "access"}

// pageData is what every template receives; Body is the page's own data.
type pageData struct {
	Title      string
	Nav        string
	User       *identity.Principal
	CSRF       string
	Flash      string
	FlashError bool
	Dev        bool
	HasAccess  bool // the Access page exists
	Now        time.Time
	Body       any
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageFiles {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"short":   shortID,
	"version": shortVersion,
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"left":    timeLeft,
	"hasRole": func(p *identity.Principal, r string) bool { return p != nil && p.HasRole(identity.Role(r)) },
	"join":    strings.Join,
	"dict":    dict,
	"zero":    func(t time.Time) bool { return t.IsZero() },
}

// dict builds a map from key, value pairs, to pass several values to a
// nested template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// shortID shortens an ID for display; the full one is in the title attribute.
func shortID(s string) string {
	if len(s) > 14 {
		return s[:14] + "…"
	}
	return s
}

// shortVersion shortens a policy version: sha256:0123456789ab.
func shortVersion(v string) string {
	if len(v) > len("sha256:")+12 {
		return v[:len("sha256:")+12]
	}
	return v
}

// timeLeft says how long until t, from now, in words.
func timeLeft(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "expired"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds left", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds left", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %dm left", int(d.Hours()), int(d.Minutes())%60)
	}
}

// render writes page name with status. The page is rendered into a buffer
// first, so a template error becomes a 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, u *user, status int, name, title, nav string, body any) {
	d := pageData{Title: title, Nav: nav, Dev: c.cfg.Dev, HasAccess: c.cfg.Access != nil, Now: c.now(), Body: body}
	if u != nil {
		if u.p.ID != "" {
			p := u.p
			d.User = &p
		}
		d.CSRF = u.session.csrf
		if u.id != "" {
			d.Flash, d.FlashError = c.takeFlash(*u)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		c.log.ErrorContext(r.Context(), "console: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error; see the server log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// Every string a page shows came from someone: an intent, a tool, a
	// reason, an agent ID, event data. A control or format character in
	// any of them (a bidirectional override that makes "exe.txt" read as
	// "txt.exe", a zero-width space) is shown as a visible ⟨U+202E⟩ marker
	// instead of acting; the templates themselves hold none.
	w.Write(printable.Show(buf.Bytes()))
}

// errorBody is the error page's data.
type errorBody struct {
	Heading, Detail string
	Status          int
}

// errorPage answers with an error page; u may be nil.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, u *user, status int, heading, detail string) {
	c.render(w, r, u, status, "error", heading, "", errorBody{Heading: heading, Detail: detail, Status: status})
}
