package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/identity"
)

// dpopProof signs a DPoP proof for method and uri, bound to token when set.
func dpopProof(t testing.TB, signer jose.Signer, method, uri, token string) string {
	t.Helper()
	jti := make([]byte, 12)
	rand.Read(jti)
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": uri, "iat": time.Now().Unix()}
	if token != "" {
		c["ath"] = credential.ATH(token)
	}
	b, _ := json.Marshal(c)
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDPoPBoundToken: a DPoP-bound task token is accepted by the gateway
// only with a proof for the gateway's URL, as by the decision API.
func TestDPoPBoundToken(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(credential.DPoPProofType))
	if err != nil {
		t.Fatal(err)
	}
	var opened api.TaskOpened
	if st := w.Do(t, "POST", "/v1/tasks", w.Tok["alice"], api.OpenTask{Agent: gatewaytest.Agent, Intent: "DPoP through the gateway",
		Scope: upScope, TTL: "15m"}, &opened); st != http.StatusCreated {
		t.Fatalf("open: %d", st)
	}
	svid, err := identity.DevSVID(w.Dir, gatewaytest.Agent, []string{"writ"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {credential.GrantTypeTokenExchange}, "subject_token": {svid},
		"subject_token_type": {credential.TokenTypeJWT}, "scope": {"task:" + opened.TaskID}}
	req, _ := http.NewRequest("POST", w.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", dpopProof(t, signer, "POST", w.URL+"/oauth2/token", ""))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr api.TokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if tr.AccessToken == "" || tr.TokenType != "DPoP" {
		t.Fatalf("exchange: %d %+v", resp.StatusCode, tr)
	}
	endpoint := w.URL + "/mcp/up"
	tok := tr.AccessToken

	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"proof for the endpoint", map[string]string{"Authorization": "DPoP " + tok, "DPoP": dpopProof(t, signer, "POST", endpoint, tok)}, 200},
		{"no proof", map[string]string{"Authorization": "DPoP " + tok}, 401},
		{"proof for another URL", map[string]string{"Authorization": "DPoP " + tok, "DPoP": dpopProof(t, signer, "POST", w.URL+"/v1/authorize", tok)}, 401},
		{"bearer scheme", map[string]string{"Authorization": "Bearer " + tok}, 401},
	} {
		a := rawPost(t, endpoint, "", initialize, tc.header)
		if a.status != tc.status {
			t.Errorf("%s: %d %s %q, want %d", tc.name, a.status, a.body, a.header.Get("WWW-Authenticate"), tc.status)
		}
		if tc.status == 401 && !strings.Contains(a.header.Get("WWW-Authenticate"), "resource_metadata=") {
			t.Errorf("%s: challenge %q without resource_metadata", tc.name, a.header.Get("WWW-Authenticate"))
		}
	}
	for _, h := range up.seen() {
		if h.Get("DPoP") != "" || strings.Contains(h.Get("Authorization"), tok) {
			t.Error("the agent's DPoP token or proof reached the upstream")
		}
	}
}
