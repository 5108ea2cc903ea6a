package identity

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/testkit"
)

func TestRequireRole(t *testing.T) {
	w := newWorld(t)
	rec := &testkit.Recorder{}
	a := w.auth(t, Options{Recorder: rec})
	h := a.RequireRole(RoleApprover)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		io.WriteString(w, p.ID)
	}))
	approver := sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(nil))
	requester := sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["realm"] = map[string]any{"groups": []any{"eng"}} }))
	expired := sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["exp"] = testNow.Add(-time.Hour).Unix() }))
	agent := sign(t, jose.ES256, w.ec, "spiffe-1", "", svidClaims("spiffe://example.org/agent/x", nil))

	type rejected struct {
		Reason      Reason `json:"reason"`
		Subject     string `json:"subject"`
		Verified    bool   `json:"subject_verified"`
		Fingerprint string `json:"token_sha256"`
		RemoteAddr  string `json:"remote_addr"`
		Path        string `json:"path"`
	}
	tests := []struct {
		name      string
		authz     []string
		status    int
		challenge string
		body      string // JSON error code
		event     *rejected
		principal string // ev.Principal
		agent     string // ev.Agent
	}{
		{name: "ok", authz: []string{"Bearer " + approver}, status: 200},
		{name: "lower-case scheme", authz: []string{"bearer " + approver}, status: 200},
		{name: "no credentials", status: 401, challenge: `Bearer realm="writ"`, body: "unauthorized",
			event: &rejected{Reason: ReasonNoCredentials, RemoteAddr: "192.0.2.1", Path: "/v1/approvals"}},
		{name: "expired", authz: []string{"Bearer " + expired}, status: 401,
			challenge: `Bearer realm="writ", error="invalid_token", error_description="token expired at 2030-01-02T02:04:05Z"`, body: "invalid_token",
			event: &rejected{Reason: ReasonExpired, Subject: "alice", Fingerprint: fingerprint([]byte(expired)), RemoteAddr: "192.0.2.1", Path: "/v1/approvals"}},
		{name: "basic auth", authz: []string{"Basic YWxpY2U6c2VjcmV0"}, status: 400, body: "invalid_request",
			challenge: `Bearer realm="writ", error="invalid_request", error_description="Authorization header must be 'Bearer <token>'"`,
			event:     &rejected{Reason: ReasonBadRequest, RemoteAddr: "192.0.2.1", Path: "/v1/approvals"}},
		{name: "two headers", authz: []string{"Bearer " + approver, "Bearer " + approver}, status: 400, body: "invalid_request",
			challenge: `Bearer realm="writ", error="invalid_request", error_description="more than one Authorization header"`,
			event:     &rejected{Reason: ReasonBadRequest, RemoteAddr: "192.0.2.1", Path: "/v1/approvals"}},
		{name: "missing role", authz: []string{"Bearer " + requester}, status: 403, body: "insufficient_scope",
			challenge: `Bearer realm="writ", error="insufficient_scope", error_description="requires role approver"`,
			event:     &rejected{Reason: ReasonInsufficientScope, Subject: "alice", Verified: true, Fingerprint: fingerprint([]byte(requester)), RemoteAddr: "192.0.2.1", Path: "/v1/approvals"},
			principal: "oidc:https://idp.example.com#alice"},
		{name: "agent missing role", authz: []string{"Bearer " + agent}, status: 403, body: "insufficient_scope",
			challenge: `Bearer realm="writ", error="insufficient_scope", error_description="requires role approver"`,
			event:     &rejected{Reason: ReasonInsufficientScope, Subject: "spiffe://example.org/agent/x", Verified: true, Fingerprint: fingerprint([]byte(agent)), RemoteAddr: "192.0.2.1", Path: "/v1/approvals"},
			agent:     "spiffe://example.org/agent/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.Reset()
			r := httptest.NewRequest("POST", "/v1/approvals", nil)
			r.RemoteAddr = "192.0.2.1:5555"
			for _, v := range tt.authz {
				r.Header.Add("Authorization", v)
			}
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, r)
			if rw.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rw.Code, tt.status, rw.Body)
			}
			if tt.status == 200 {
				if got := rw.Body.String(); got != "oidc:https://idp.example.com#alice" {
					t.Errorf("handler saw %q", got)
				}
				if n := len(rec.Events()); n != 0 {
					t.Errorf("success recorded %d events", n)
				}
				return
			}
			if got := rw.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
			}
			var body struct{ Error, Detail string }
			if err := json.Unmarshal(rw.Body.Bytes(), &body); err != nil || body.Error != tt.body || body.Detail == "" {
				t.Errorf("body %s (%v), want error %q and a detail", rw.Body, err, tt.body)
			}
			events := rec.Events()
			if len(events) != 1 {
				t.Fatalf("recorded %d events, want 1", len(events))
			}
			ev := events[0]
			if ev.Type != ledger.TypeAuthRejected || ev.Principal != tt.principal || ev.Agent != tt.agent || !ev.Time.Equal(testNow) {
				t.Errorf("event envelope %+v", ev)
			}
			for _, a := range tt.authz {
				if tok := strings.TrimPrefix(a, "Bearer "); strings.Contains(string(ev.Data), tok[len(tok)-20:]) {
					t.Errorf("event data contains the token: %s", ev.Data)
				}
			}
			var got rejected
			if err := json.Unmarshal(ev.Data, &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(*tt.event, got); d != "" {
				t.Errorf("event data (-want +got):\n%s", d)
			}
		})
	}
}

// TestRequireRoleRecorderDown checks that a refusal is still sent when the
// ledger cannot record it.
func TestRequireRoleRecorderDown(t *testing.T) {
	w := newWorld(t)
	rec := &testkit.Recorder{}
	rec.Fail(errors.New("disk full"))
	a := w.auth(t, Options{Recorder: rec})
	h := a.RequireRole()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler reached") }))
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, httptest.NewRequest("GET", "/", nil))
	if rw.Code != 401 {
		t.Errorf("status %d, want 401", rw.Code)
	}
}

// TestX509SVID runs a TLS server built with TLSConfig and connects with
// X.509-SVIDs from the trusted and from another trust domain.
func TestX509SVID(t *testing.T) {
	w := newWorld(t)
	now := time.Now()
	a := w.auth(t, Options{Now: func() time.Time { return now }})
	// testNow is in the future; issue certificates valid around the real clock.
	w.ca = selfSignedCAAt(t, w.caKey, "spiffe://example.org", now)
	b := spiffeBundleWith(t, "example.org", w.ca)
	a.spiffe.setBundle(b.TrustDomain(), b)

	srv := httptest.NewUnstartedServer(a.RequireRole()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		io.WriteString(w, p.ID+" "+string(p.Method))
	})))
	srv.TLS = a.TLSConfig(&tls.Config{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	client := func(cert *x509.Certificate, key any) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}
		}
		return &http.Client{Transport: tr}
	}
	leaf, key := leafSVIDAt(t, w.ca, w.caKey, "spiffe://example.org/agent/x509", now)
	resp, err := client(leaf, key).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "spiffe://example.org/agent/x509 x509-svid" {
		t.Errorf("trusted SVID: %d %s", resp.StatusCode, got)
	}

	evilKey := mustEC(t)
	evilCA := selfSignedCAAt(t, evilKey, "spiffe://evil.org", now)
	evil, ek := leafSVIDAt(t, evilCA, evilKey, "spiffe://evil.org/agent/x", now)
	if resp, err := client(evil, ek).Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Errorf("handshake with an SVID of another trust domain succeeded: %d", resp.StatusCode)
	}
	// Forged: claims example.org but is signed by another CA.
	forged, fk := leafSVIDAt(t, evilCA, evilKey, "spiffe://example.org/agent/x", now)
	if resp, err := client(forged, fk).Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Errorf("handshake with a forged SVID succeeded")
	}
	// Authenticate re-verifies even if the listener did not.
	for _, c := range []struct {
		cert *x509.Certificate
		want Reason
	}{{evil, ReasonWrongTrustDomain}, {forged, ReasonInvalidSVID}, {w.ca, ReasonInvalidSVID}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.cert}}
		_, err := a.Authenticate(t.Context(), r)
		var e *refusal.Error
		if !errors.As(err, &e) || Reason(e.Code) != c.want {
			t.Errorf("Authenticate(%v) = %v, want %s", c.cert.URIs, err, c.want)
		}
	}
	// No client certificate: plain 401 without an error code.
	resp, err = client(nil, nil).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="writ"` {
		t.Errorf("no certificate: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
