package credential

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testSubjectToken = "eyJhbGciOiJFUzI1NiJ9.SUBJECT-SECRET.sig"
	testActorToken   = "eyJhbGciOiJFUzI1NiJ9.ACTOR-SECRET.sig"
)

func exchangeForm(mod func(url.Values)) url.Values {
	v := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {testSubjectToken},
		"subject_token_type": {TokenTypeJWT},
		"scope":              {"task:01JTASK"},
	}
	if mod != nil {
		mod(v)
	}
	return v
}

func exchangeRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestParseExchange(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
		want ExchangeRequest
	}{
		{"agent identity token", exchangeForm(nil), ExchangeRequest{
			SubjectToken: testSubjectToken, SubjectTokenType: TokenTypeJWT, TaskID: "01JTASK"}},
		{"delegation", exchangeForm(func(v url.Values) {
			v.Set("subject_token_type", TokenTypeAccessToken)
			v.Set("actor_token", testActorToken)
			v.Set("actor_token_type", TokenTypeJWT)
			v.Set("scope", "task:child-1")
		}), ExchangeRequest{
			SubjectToken: testSubjectToken, SubjectTokenType: TokenTypeAccessToken,
			ActorToken: testActorToken, ActorTokenType: TokenTypeJWT, TaskID: "child-1"}},
		{"audience and resource repeat", exchangeForm(func(v url.Values) {
			v["audience"] = []string{"writ", "mcp"}
			v["resource"] = []string{"https://writ.example/mcp/erp", "https://writ.example/v1/authorize"}
			v.Set("requested_token_type", TokenTypeAccessToken)
		}), ExchangeRequest{
			SubjectToken: testSubjectToken, SubjectTokenType: TokenTypeJWT, TaskID: "01JTASK",
			Audience: []string{"writ", "mcp"}, Resource: []string{"https://writ.example/mcp/erp", "https://writ.example/v1/authorize"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchangeRequest(tc.form.Encode())
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
			got, err := ParseExchange(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if got.Delegation() != (tc.want.SubjectTokenType == TokenTypeAccessToken) {
				t.Error("Delegation() disagrees with the subject token type")
			}
		})
	}
}

func TestParseExchangeRefusals(t *testing.T) {
	set := func(k, v string) func(url.Values) { return func(f url.Values) { f.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(f url.Values) { f.Del(k) } }
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		code string
	}{
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/oauth2/token", nil) }, CodeInvalidRequest},
		{"params in query", func() *http.Request {
			r := exchangeRequest(exchangeForm(nil).Encode())
			r.URL.RawQuery = "subject_token=x"
			return r
		}, CodeInvalidRequest},
		{"json body", func() *http.Request {
			r := exchangeRequest(`{"grant_type":"x"}`)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, CodeInvalidRequest},
		{"no content type", func() *http.Request {
			r := exchangeRequest(exchangeForm(nil).Encode())
			r.Header.Del("Content-Type")
			return r
		}, CodeInvalidRequest},
		{"oversized", func() *http.Request {
			return exchangeRequest(exchangeForm(set("subject_token", strings.Repeat("a", MaxExchangeBytes))).Encode())
		}, CodeInvalidRequest},
		{"bad encoding", func() *http.Request { return exchangeRequest("grant_type=%zz") }, CodeInvalidRequest},
		{"duplicate subject_token", func() *http.Request {
			return exchangeRequest(exchangeForm(func(v url.Values) { v.Add("subject_token", "other") }).Encode())
		}, CodeInvalidRequest},
		{"duplicate scope", func() *http.Request {
			return exchangeRequest(exchangeForm(func(v url.Values) { v.Add("scope", "task:b") }).Encode())
		}, CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExchange(tc.req())
			wantErr(t, err, ErrInvalidRequest)
			if got := ErrorCode(err); got != tc.code {
				t.Errorf("code = %s, want %s (%v)", got, tc.code, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		mod  func(url.Values)
		code string
	}{
		{"no grant_type", del("grant_type"), CodeInvalidRequest},
		{"client_credentials", set("grant_type", "client_credentials"), CodeUnsupportedGrantType},
		{"no subject_token", del("subject_token"), CodeInvalidRequest},
		{"no subject_token_type", del("subject_token_type"), CodeInvalidRequest},
		{"id_token type", set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), CodeInvalidRequest},
		{"actor without type", set("actor_token", testActorToken), CodeInvalidRequest},
		{"actor type without token", set("actor_token_type", TokenTypeJWT), CodeInvalidRequest},
		{"actor with jwt subject", func(v url.Values) {
			v.Set("actor_token", testActorToken)
			v.Set("actor_token_type", TokenTypeJWT)
		}, CodeInvalidRequest},
		{"delegation without actor", set("subject_token_type", TokenTypeAccessToken), CodeInvalidRequest},
		{"delegation with access token actor", func(v url.Values) {
			v.Set("subject_token_type", TokenTypeAccessToken)
			v.Set("actor_token", testActorToken)
			v.Set("actor_token_type", TokenTypeAccessToken)
		}, CodeInvalidRequest},
		{"requested refresh token", set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), CodeInvalidRequest},
		{"no scope", del("scope"), CodeInvalidScope},
		{"other scope", set("scope", "openid"), CodeInvalidScope},
		{"two tasks", set("scope", "task:a task:b"), CodeInvalidScope},
		{"extra scope", set("scope", "task:a admin"), CodeInvalidScope},
		{"empty task", set("scope", "task:"), CodeInvalidScope},
		{"task id with slash", set("scope", "task:a/b"), CodeInvalidScope},
		{"task id too long", set("scope", "task:"+strings.Repeat("a", 129)), CodeInvalidScope},
		{"relative resource", set("resource", "/mcp/erp"), CodeInvalidTarget},
		{"resource with fragment", set("resource", "https://writ.example/#x"), CodeInvalidTarget},
		{"empty audience", set("audience", ""), CodeInvalidTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExchange(exchangeRequest(exchangeForm(tc.mod).Encode()))
			wantErr(t, err, ErrInvalidRequest)
			if got := ErrorCode(err); got != tc.code {
				t.Errorf("code = %s, want %s (%v)", got, tc.code, err)
			}
			for _, secret := range []string{"SUBJECT-SECRET", "ACTOR-SECRET"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a token: %v", err)
				}
			}
		})
	}
}

func TestExchangeRequestRedacts(t *testing.T) {
	x := ExchangeRequest{SubjectToken: testSubjectToken, SubjectTokenType: TokenTypeAccessToken,
		ActorToken: testActorToken, ActorTokenType: TokenTypeJWT, TaskID: "t1"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("exchange", "req", x)
	for _, out := range []string{fmt.Sprint(x), fmt.Sprintf("%+v", x), fmt.Sprintf("%#v", x), fmt.Sprintf("%v", &x), logged.String()} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("token printed: %s", out)
		}
		if !strings.Contains(out, "t1") {
			t.Errorf("task id missing from %s", out)
		}
	}
}

func TestWriteToken(t *testing.T) {
	for _, dpop := range []bool{false, true} {
		w := httptest.NewRecorder()
		WriteToken(w, "tok", 599*time.Second+999*time.Millisecond, "task:t1", dpop)
		typ := map[bool]string{false: "Bearer", true: "DPoP"}[dpop]
		checkJSONResponse(t, w, http.StatusOK, map[string]any{
			"access_token": "tok", "issued_token_type": TokenTypeAccessToken,
			"token_type": typ, "expires_in": float64(599), "scope": "task:t1",
		})
	}
}

func TestWriteErrors(t *testing.T) {
	w := httptest.NewRecorder()
	WriteOAuthError(w, http.StatusBadRequest, CodeInvalidGrant, "subject \"token\"\n\\ refused\x00")
	checkJSONResponse(t, w, http.StatusBadRequest, map[string]any{
		"error": "invalid_grant", "error_description": "subject 'token'?/ refused?",
	})
	w = httptest.NewRecorder()
	_, err := ParseExchange(exchangeRequest(exchangeForm(func(v url.Values) { v.Set("scope", "openid") }).Encode()))
	WriteError(w, err)
	checkJSONResponse(t, w, http.StatusBadRequest, map[string]any{
		"error": "invalid_scope", "error_description": "scope must be exactly task:<task id>",
	})
	w = httptest.NewRecorder()
	WriteError(w, tokenError(ErrRevoked, "access token has been revoked"))
	checkJSONResponse(t, w, http.StatusUnauthorized, map[string]any{
		"error": "invalid_token", "error_description": "access token has been revoked",
	})
}

func TestWriteExchangeError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{tokenError(ErrRevoked, "access token has been revoked"), 400, CodeInvalidGrant},
		{tokenError(ErrExpired, "x"), 400, CodeInvalidGrant},
		{dpopError("x"), 400, CodeInvalidDPoPProof},
		{requestError(CodeInvalidScope, "x"), 400, CodeInvalidScope},
		{newError(ErrInvalidRequest, CodeInvalidClient, "x"), 401, CodeInvalidClient},
		{fmt.Errorf("store at /var/lib/writ down"), 500, "server_error"},
	} {
		w := httptest.NewRecorder()
		WriteExchangeError(w, tc.err)
		desc := Description(tc.err)
		if tc.status == 500 {
			desc = "internal error"
		}
		checkJSONResponse(t, w, tc.status, map[string]any{"error": tc.code, "error_description": desc})
	}
}

func checkJSONResponse(t *testing.T, w *httptest.ResponseRecorder, status int, want map[string]any) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d", w.Code, status)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
