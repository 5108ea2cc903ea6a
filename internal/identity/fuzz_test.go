package identity

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// FuzzVerifyToken runs the whole bearer-token path against a fixed key set.
// It must never panic, every refusal must be a *refusal.Error with a header-safe
// detail, and every JWT-SVID it accepts must also pass go-spiffe's own
// jwtsvid.ParseAndValidate (writ is never more lenient than the reference).
func FuzzVerifyToken(f *testing.F) {
	w := newWorld(f)
	now := time.Now()
	w.cfg.CacheSize = 0
	a, err := New(f.Context(), w.cfg, Options{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	at := func(m map[string]any) {
		m["exp"] = now.Add(time.Hour).Unix()
		m["iat"] = now.Unix()
	}
	f.Add(sign(f, jose.ES256, w.ec, "spiffe-1", "JWT", svidClaims("spiffe://example.org/agent/x", at)))
	f.Add(sign(f, jose.ES256, w.ec, "oidc-1", "", oidcClaims(at)))
	f.Add(sign(f, jose.RS256, w.rsa, "oidc-rsa", "", oidcClaims(at)))
	f.Add(sign(f, jose.HS256, w.oidcPub, "oidc-1", "", oidcClaims(at)))
	f.Add(unsigned(f, map[string]any{"alg": "none"}, svidClaims("spiffe://example.org/agent/x", at)))
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := a.VerifyToken(t.Context(), tok)
		if err != nil {
			e, ok := err.(*refusal.Error)
			if !ok {
				t.Fatalf("refusal %T is not a *refusal.Error", err)
			}
			if bearer.Text(e.Detail) != e.Detail {
				t.Fatalf("detail not header-safe: %q", e.Detail)
			}
			return
		}
		if p.Method == MethodJWTSVID {
			if _, err := jwtsvid.ParseAndValidate(tok, a.spiffe, w.cfg.Audience); err != nil {
				t.Fatalf("writ accepted a JWT-SVID go-spiffe refuses: %v", err)
			}
		}
		if p.ID == "" || p.Fingerprint != fingerprint([]byte(tok)) {
			t.Fatalf("accepted with principal %+v", p)
		}
	})
}

// FuzzRoles feeds arbitrary claim documents to the role mapper.
func FuzzRoles(f *testing.F) {
	f.Add(`{"realm":{"groups":["sec","eng"]}}`)
	f.Add(`{"realm":{"groups":"root"}}`)
	f.Add(`{"realm":[1,2]}`)
	w := newWorld(f)
	a, err := New(f.Context(), w.cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	iss := a.issuers[testIssuer]
	f.Fuzz(func(t *testing.T, doc string) {
		var m map[string]any
		if jsonUnmarshal([]byte(doc), &m) != nil {
			return
		}
		for _, r := range iss.roles.Roles(m) {
			if r != RoleApprover && r != RoleRequester && r != RoleAdmin {
				t.Fatalf("unmapped role %q", r)
			}
		}
	})
}

var jsonUnmarshal = json.Unmarshal
