package console

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/testkit"
)

func TestSessionsExpire(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	s := newSessions(time.Hour, 10*time.Minute, c.Now)
	p := &identity.Principal{ID: "oidc:writ-dev#bob", Roles: []identity.Role{identity.RoleApprover}}

	id, _, ok := s.create(p)
	if !ok {
		t.Fatal("create refused")
	}
	// Used every 9 minutes, the session lives until its absolute end.
	for c.Add(9 * time.Minute); c.Now().Before(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)); c.Add(9 * time.Minute) {
		if _, ok := s.get(id); !ok {
			t.Fatalf("session gone at %s while in use", c.Now())
		}
	}
	if _, ok := s.get(id); ok {
		t.Fatalf("session alive at %s, past its 1h lifetime", c.Now())
	}

	// Idle for the idle timeout ends it.
	id, _, _ = s.create(p)
	c.Add(10 * time.Minute)
	if _, ok := s.get(id); ok {
		t.Error("session alive after 10m idle")
	}

	// An anonymous session (sign-in in progress) lasts anonTTL.
	id, _, _ = s.create(nil)
	c.Add(anonTTL - time.Second)
	if _, ok := s.get(id); !ok {
		t.Error("anonymous session gone early")
	}
	c.Add(time.Second)
	if _, ok := s.get(id); ok {
		t.Error("anonymous session alive past anonTTL")
	}

	// Destroyed sessions are gone; unknown and malformed IDs find nothing.
	id, _, _ = s.create(p)
	s.destroy(id)
	for _, bad := range []string{id, "", "x", randomToken()} {
		if _, ok := s.get(bad); ok {
			t.Errorf("get(%q) found a session", bad)
		}
	}
}

func TestAnonymousSessionsAreBounded(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	s := newSessions(time.Hour, time.Hour, c.Now)
	for i := 0; i < maxAnonSessions; i++ {
		if _, _, ok := s.create(nil); !ok {
			t.Fatalf("anonymous session %d refused", i)
		}
	}
	if _, _, ok := s.create(nil); ok {
		t.Error("more anonymous sessions than maxAnonSessions")
	}
	// Signing in still works, and expired anonymous sessions make room.
	if _, _, ok := s.create(&identity.Principal{ID: "x"}); !ok {
		t.Error("sign-in refused while anonymous sessions are full")
	}
	c.Add(anonTTL + time.Minute)
	if _, _, ok := s.create(nil); !ok {
		t.Error("expired anonymous sessions were not swept")
	}
}

func TestCSRFCompare(t *testing.T) {
	ss := session{csrf: randomToken()}
	for _, tc := range []struct {
		token string
		want  bool
	}{{ss.csrf, true}, {"", false}, {ss.csrf[:10], false}, {randomToken(), false}} {
		if got := csrfOK(ss, tc.token); got != tc.want {
			t.Errorf("csrfOK(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if csrfOK(session{}, "") {
		t.Error("an empty token matched a session without one")
	}
}

func TestParseFilter(t *testing.T) {
	f, err := parseFilter(url.Values{"state": {"active"}, "since": {"2026-11-26"}, "until": {"2026-11-26"}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Since.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) || f.Until.Day() != 26 || f.Until.Hour() != 23 {
		t.Errorf("dates: since %s until %s", f.Since, f.Until)
	}
	if f, err := parseFilter(url.Values{"since": {"2026-11-26T09:30"}}); err != nil || f.Since.Hour() != 9 || f.Since.Minute() != 30 {
		t.Errorf("datetime-local: %v %v", f.Since, err)
	}
	for _, bad := range []url.Values{{"state": {"nope"}}, {"since": {"tomorrow"}}, {"until": {"2026-13-01"}}} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("parseFilter(%v) accepted", bad)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"state=active", "since=2026-11-26&until=2026-11-27T10:00", "agent=spiffe%3A%2F%2Fx&requester=a", "since=%ff", "state=&since=2026-11-26T09:30:00Z", "from=2026-11-27&to=2026-11-26", "agent=spiffe%3A%2F%2Fwrit.dev%2Fagent%2Fa&from=2026-11-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if opts, err := accessOptions(q); err == nil {
			if len(opts.Agent) > 512 || (!opts.From.IsZero() && !opts.To.IsZero() && opts.From.After(opts.To)) {
				t.Fatalf("access options accepted: %+v", opts)
			}
		}
		flt, err := parseFilter(q)
		if err != nil {
			return
		}
		if flt.State != "" && flt.State != "active" && flt.State != "pending_approval" && flt.State != "denied" &&
			flt.State != "completed" && flt.State != "expired" && flt.State != "revoked" {
			t.Fatalf("accepted state %q", flt.State)
		}
		if len(flt.Agent) > 512 || len(flt.Requester) > 512 {
			t.Fatal("accepted an oversized filter")
		}
	})
}

func FuzzDevName(f *testing.F) {
	for _, s := range []string{"alice", "bob@example.com", "", "a b", "<script>", "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validDevName(s) {
			return
		}
		if len(s) == 0 || len(s) > 64 {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if r > 0x7f || r == '<' || r == '>' || r == '"' || r == ' ' || r == '#' {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func FuzzRolesClaim(f *testing.F) {
	for _, s := range []string{`{"groups":["writ-approvers","x"]}`, `{"groups":"audit"}`, `{"realm":{"roles":["audit"]}}`, `{"groups":[1,null,{}]}`, `[]`} {
		f.Add(s, "groups")
		f.Add(s, "realm.roles")
	}
	f.Fuzz(func(t *testing.T, claims, path string) {
		var all map[string]any
		if json.Unmarshal([]byte(claims), &all) != nil {
			return
		}
		o, err := newOIDCClient(config.ConsoleOIDCConfig{Issuer: "https://idp.example.com", ClientID: "c", RolesClaim: path,
			Roles: map[string][]string{"approver": {"writ-approvers"}, "auditor": {"audit"}}}, config.IdentityConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range o.roles.Roles(all) {
			if r != identity.RoleApprover && r != identity.RoleAuditor {
				t.Fatalf("granted unmapped role %q", r)
			}
		}
	})
}
