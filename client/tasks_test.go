package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
)

// TestAuthorizeAnswers checks how Authorize reads each answer: a 403
// decision is a denial without error; every other failure is an error, and
// nothing but a 200 with allow is ever an allow.
func TestAuthorizeAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    api.Authorized
		wantErr string // error code, for *Error
	}{
		{"allow", 200, `{"allow":true,"action_id":"act_1","decision_id":"d1"}`,
			api.Authorized{Allow: true, ActionID: "act_1", DecisionID: "d1"}, ""},
		{"deny", 403, `{"allow":false,"decision_id":"d2","reasons":["no"]}`,
			api.Authorized{DecisionID: "d2", Reasons: []string{"no"}}, ""},
		{"step-up", 403, `{"allow":false,"approval_required":true,"approval_id":"apr_1","decision_id":"d3"}`,
			api.Authorized{DecisionID: "d3", ApprovalRequired: true, ApprovalID: "apr_1"}, ""},
		{"403 claiming allow stays a denial", 403, `{"allow":true,"decision_id":"d4"}`,
			api.Authorized{DecisionID: "d4"}, ""},
		{"403 error body", 403, `{"error":"forbidden","detail":"x"}`, api.Authorized{}, "forbidden"},
		{"revoked token", 401, `{"error":"invalid_token","detail":"access token has been revoked"}`, api.Authorized{}, "invalid_token"},
		{"ledger down", 503, `{"error":"ledger_unavailable","detail":"x"}`, api.Authorized{}, "ledger_unavailable"},
		{"200 without allow", 200, `{"allow":false,"decision_id":"d5"}`, api.Authorized{}, "-"},
		{"200 garbage", 200, `{`, api.Authorized{}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/v1/authorize" || r.Header.Get("Authorization") != "Bearer tt" {
					http.Error(w, "bad request shape", 400)
					return
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			got, err := New(srv.URL, "tt").Authorize(context.Background(), api.Authorize{Tool: "t", Operation: "read", Resource: "r"})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				var e *Error
				if tt.wantErr != "-" && (!errors.As(err, &e) || e.Body.Error != tt.wantErr) {
					t.Fatalf("error %v, want code %s", err, tt.wantErr)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExchangeToken checks the RFC 8693 request (a form, without the
// client's bearer token) and the reading of RFC 6749 errors.
func TestExchangeToken(t *testing.T) {
	var form url.Values
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			w.WriteHeader(400)
			return
		}
		form = r.PostForm
		if form.Get("subject_token") == "bad" {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"the task is not active"}`)
			return
		}
		io.WriteString(w, `{"access_token":"at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300,"scope":"task:tsk_1"}`)
	}))
	defer srv.Close()
	c := New(srv.URL, "requester-token")
	got, err := c.ExchangeToken(context.Background(), "svid", "tsk_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at" || got.ExpiresIn != 300 {
		t.Errorf("answer %+v", got)
	}
	want := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {"svid"},
		"subject_token_type": {TokenTypeJWT}, "scope": {"task:tsk_1"}}
	if diff := cmp.Diff(want, form); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	if auth != "" {
		t.Errorf("the exchange sent the client's token: %q", auth)
	}
	_, err = c.ExchangeToken(context.Background(), "bad", "tsk_1")
	var e *Error
	if !errors.As(err, &e) || e.Body.Error != "invalid_grant" || e.Body.Detail != "the task is not active" || e.Status != 400 {
		t.Errorf("error %#v, want invalid_grant with its description", err)
	}
}

// TestTaskPaths checks the routes and bodies of the task methods, with IDs
// escaped into paths.
func TestTaskPaths(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+" "+string(b))
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL+"/", "x")
	c.GetTask(ctx, "a/b")
	c.ListTasks(ctx, "pending_approval")
	c.ListTasks(ctx, "")
	c.Decide(ctx, "tsk_1", api.Decide{Decision: "approve", Reason: "ok"})
	c.DecideApproval(ctx, "apr_1", api.Decide{Decision: "deny", Reason: "no"})
	c.PendingApprovals(ctx)
	c.Complete(ctx, "tsk_1")
	c.Revoke(ctx, "tsk_1", "done")
	c.Trace(ctx, "tsk_1")
	c.RecordResult(ctx, "act_1", api.ActionResult{Status: "ok", Output: []byte(`{"n":1}`)})
	want := []string{
		"GET /v1/tasks/a%2Fb? ",
		"GET /v1/tasks?state=pending_approval ",
		"GET /v1/tasks? ",
		`POST /v1/tasks/tsk_1/approvals? {"decision":"approve","reason":"ok"}`,
		`POST /v1/approvals/apr_1? {"decision":"deny","reason":"no"}`,
		"GET /v1/approvals? ",
		"POST /v1/tasks/tsk_1/complete? ",
		`POST /v1/tasks/tsk_1/revoke? {"reason":"done"}`,
		"GET /v1/tasks/tsk_1/trace? ",
		`POST /v1/actions/act_1/result? {"status":"ok","output":{"n":1}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
