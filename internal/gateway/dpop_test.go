package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/credential/credtest"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/identity"
)

// TestDPoPBoundToken: a DPoP-bound task token is accepted by the gateway
// only with a proof for the gateway's URL, as by the decision API.
func TestDPoPBoundToken(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	key := credtest.NewDPoPKey(t)
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
	req.Header.Set("DPoP", key.Proof(t, "POST", w.URL+"/oauth2/token", ""))
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
		{"proof for the endpoint", map[string]string{"Authorization": "DPoP " + tok, "DPoP": key.Proof(t, "POST", endpoint, tok)}, 200},
		{"no proof", map[string]string{"Authorization": "DPoP " + tok}, 401},
		{"proof for another URL", map[string]string{"Authorization": "DPoP " + tok, "DPoP": key.Proof(t, "POST", w.URL+"/v1/authorize", tok)}, 401},
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
