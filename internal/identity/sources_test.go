package identity

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/refusal"
)

// TestOIDCDiscovery serves a discovery document and JWKS over TLS and checks
// that tokens of that issuer verify, and that an outage before the first
// fetch answers keys_unavailable.
func TestOIDCDiscovery(t *testing.T) {
	w := newWorld(t)
	var down atomic.Bool
	var jwksHits atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(rw, "down", 503)
			return
		}
		json.NewEncoder(rw).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(rw http.ResponseWriter, r *http.Request) {
		jwksHits.Add(1)
		json.NewEncoder(rw).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &w.ec.PublicKey, KeyID: "k1", Use: "sig"}}})
	})

	w.cfg.OIDC = []config.OIDCIssuerConfig{{Issuer: srv.URL, Kind: "agent"}}
	a := w.auth(t, Options{HTTPClient: srv.Client()})
	claims := func(iss string) map[string]any {
		return oidcClaims(func(m map[string]any) { m["iss"] = iss })
	}

	down.Store(true)
	_, err := a.VerifyToken(t.Context(), sign(t, jose.ES256, w.ec, "k1", "", claims(srv.URL)))
	var e *refusal.Error
	if !errors.As(err, &e) || Reason(e.Code) != ReasonKeysUnavailable {
		t.Fatalf("issuer down: %v, want keys_unavailable", err)
	}
	a.issuers[srv.URL].keys.(*remoteKeys).tried = time.Time{} // skip the refetch back-off

	down.Store(false)
	p, err := a.VerifyToken(t.Context(), sign(t, jose.ES256, w.ec, "k1", "", claims(srv.URL)))
	if err != nil {
		t.Fatalf("discovered issuer: %v", err)
	}
	if p.Kind != KindAgent || p.ID != "oidc:"+srv.URL+"#alice" || p.Method != MethodOIDC {
		t.Errorf("principal %+v", p)
	}
	// An unknown kid right after a fetch does not cause another fetch.
	before := jwksHits.Load()
	_, err = a.VerifyToken(t.Context(), sign(t, jose.ES256, w.other, "k2", "", claims(srv.URL)))
	if !errors.As(err, &e) || Reason(e.Code) != ReasonUnknownKey {
		t.Errorf("unknown kid: %v", err)
	}
	if jwksHits.Load() != before {
		t.Errorf("unknown kid fetched the JWKS again within the back-off")
	}
}

// TestBundleEndpoint fetches a trust bundle from an https_web SPIFFE bundle
// endpoint whose certificate is trusted through bundle_endpoint_ca_file.
func TestBundleEndpoint(t *testing.T) {
	w := newWorld(t)
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString("partner.org"))
	if err := b.AddJWTAuthority("p1", &w.other.PublicKey); err != nil {
		t.Fatal(err)
	}
	body, _ := b.Marshal()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write(body) }))
	defer srv.Close()
	caFile := filepath.Join(w.dir, "endpoint-ca.pem")
	writeFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	w.cfg.SPIFFE.TrustDomains = append(w.cfg.SPIFFE.TrustDomains, config.TrustDomainConfig{
		Name: "partner.org", BundleEndpoint: srv.URL, BundleEndpointCAFile: caFile,
	})
	a := w.auth(t, Options{})
	if _, err := a.VerifyToken(t.Context(), sign(t, jose.ES256, w.other, "p1", "", svidClaims("spiffe://partner.org/agent/a", nil))); err != nil {
		t.Fatalf("SVID of federated trust domain: %v", err)
	}
	// Keys do not cross trust domains: partner.org's key cannot sign for example.org.
	_, err := a.VerifyToken(t.Context(), sign(t, jose.ES256, w.other, "p1", "", svidClaims("spiffe://example.org/agent/a", nil)))
	var e *refusal.Error
	if !errors.As(err, &e) || Reason(e.Code) != ReasonUnknownKey {
		t.Errorf("cross-domain key: %v, want unknown_key", err)
	}

	// An endpoint that cannot be reached at start fails New.
	w.cfg.SPIFFE.TrustDomains[1].BundleEndpointCAFile = ""
	if _, err := New(t.Context(), w.cfg, Options{}); err == nil {
		t.Errorf("New with an untrusted endpoint certificate succeeded")
	}
}

func TestNewRejectsBadTrustFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		body string
	}{
		{"empty JWKS", "idp.jwks", `{"keys":[]}`},
		{"symmetric key only", "idp.jwks", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}`},
		{"not JSON", "idp.jwks", `nope`},
		{"bundle without keys", "example.org.bundle", `{"keys":[]}`},
		{"bundle not JSON", "example.org.bundle", `[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			writeFile(t, filepath.Join(w.dir, tt.file), []byte(tt.body))
			if _, err := New(t.Context(), w.cfg, Options{}); err == nil {
				t.Errorf("New accepted %s", tt.body)
			}
		})
	}
}
