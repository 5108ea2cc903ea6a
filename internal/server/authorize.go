package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/jsonappend"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

// Body limits of the decision API. A result's output may be as large as
// the ledger's body limit, plus room for the envelope.
const maxAuthorizeBody = 1 << 20

func (s *Server) maxResultBody() int64 { return s.cfg.Ledger.MaxBodyBytes + 64<<10 }

// authorizeAction answers POST /v1/authorize: the task token is checked
// (signature from the verify cache, expiry, revocation, liveness in the
// task state, binding), then policy decides the call and the decision is
// durable in the ledger before the answer. Any failure to record is a 503,
// never an allow.
func (s *Server) authorizeAction(w http.ResponseWriter, r *http.Request) {
	cred, ok := s.taskCredential(w, r)
	if !ok {
		return
	}
	var req api.Authorize
	if !decodeJSON(w, r, maxAuthorizeBody, &req) {
		return
	}
	out, err := s.decider().Authorize(r.Context(), cred, req, task.Request{Gateway: policy.GatewayAPI, Source: abuse.PeerHost(r), TraceID: traceID(r)})
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	status := http.StatusOK
	if !out.Allow {
		status = refusal.Forbidden.HTTPStatus()
	}
	httpjson.WriteEncoded(w, status, appendAuthorized(make([]byte, 0, 256), &out))
}

// appendAuthorized appends the decision API's answer as encoding/json
// writes it (TestAppendAuthorizedIsEncodingJSON), without reflection: it
// is written for every call.
func appendAuthorized(b []byte, a *api.Authorized) []byte {
	w := jsonappend.Object{B: b}
	w.Bool("allow", a.Allow)
	w.OptStr("action_id", a.ActionID)
	w.Str("decision_id", a.DecisionID)
	w.OptStrings("reasons", a.Reasons)
	if a.ApprovalRequired {
		w.Bool("approval_required", true)
	}
	w.OptStr("approval_id", a.ApprovalID)
	if a.RecordOutput != nil {
		w.Bool("record_output", *a.RecordOutput)
	}
	w.OptStrings("redact", a.Redact)
	return w.End()
}

// actionResult answers POST /v1/actions/{id}/result: the status and output
// of an authorized call, recorded as action.completed.
func (s *Server) actionResult(w http.ResponseWriter, r *http.Request) {
	cred, ok := s.taskCredential(w, r)
	if !ok {
		return
	}
	var res api.ActionResult
	if !decodeJSON(w, r, s.maxResultBody(), &res) {
		return
	}
	out, err := s.tasks.RecordResult(r.Context(), cred, r.PathValue("id"), res)
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// stepUpStatus answers GET /v1/approvals/{id}/status for the agent that
// was asked to wait for step-up {id}, by its task token: whether an
// approver granted or denied it, so that the agent retries the call once
// it may (and not before: every retry is recorded as a denial).
func (s *Server) stepUpStatus(w http.ResponseWriter, r *http.Request) {
	cred, ok := s.taskCredential(w, r)
	if !ok {
		return
	}
	out, err := s.tasks.StepUp(cred, r.PathValue("id"))
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// taskCredential authenticates a decision API request by its task token:
// "Authorization: Bearer <token>", or "Authorization: DPoP <token>" with a
// DPoP proof. It answers 401 with a WWW-Authenticate challenge, and records
// auth.rejected (never with the token), when the token is refused.
func (s *Server) taskCredential(w http.ResponseWriter, r *http.Request) (task.VerifiedCredential, bool) {
	ctx := r.Context()
	raw, dpop, e := accessToken(r)
	if e != nil {
		s.refuseToken(w, r, e, dpop)
		return task.VerifiedCredential{}, false
	}
	now := time.Now()
	tok, err := s.issuer.Verify(ctx, raw, now)
	if err != nil {
		s.refuseToken(w, r, tokenRefusal(err, nil), dpop)
		return task.VerifiedCredential{}, false
	}
	if !s.tasks.CredentialLive(tok.JTI) {
		s.refuseToken(w, r, invalidToken(tok.JTI, tok.TaskID, "access token is no longer valid: its task has ended or it was revoked"), dpop)
		return task.VerifiedCredential{}, false
	}
	var jkt string
	if dpop {
		if tok.Cnf.JKT == "" {
			s.refuseToken(w, r, invalidToken(tok.JTI, tok.TaskID, "access token is not DPoP-bound; send it with the Bearer scheme"), dpop)
			return task.VerifiedCredential{}, false
		}
		proof, err := credential.DPoPProof(r.Header)
		if err == nil {
			jkt, err = credential.VerifyDPoP(proof, r.Method, s.htu(r), raw, now, s.replay)
		}
		if err != nil {
			s.refuseToken(w, r, tokenRefusal(err, tok), true)
			return task.VerifiedCredential{}, false
		}
	}
	if err := credential.CheckBinding(tok, jkt, clientCert(r), s.requireBinding); err != nil {
		s.refuseToken(w, r, tokenRefusal(err, tok), dpop || tok.Cnf.JKT != "")
		return task.VerifiedCredential{}, false
	}
	if res := s.resourceOf(r); !tok.AcceptedAt(res) {
		s.refuseToken(w, r, invalidToken(tok.JTI, tok.TaskID, "access token was issued for resource "+tok.Resource+", not "+res+"; ask the token endpoint for one with this resource"), dpop)
		return task.VerifiedCredential{}, false
	}
	if !s.limits.Admit(w, r, tok.Agent()) {
		return task.VerifiedCredential{}, false
	}
	return task.VerifiedCredential{JTI: tok.JTI, TaskID: tok.TaskID, Agent: tok.Agent(), Subject: tok.Subject,
		Expiry: tok.Expiry, Binding: tok.Cnf.Binding(), ActChain: tok.Actors}, true
}

// invalidToken refuses a token whose signature verified, of jti and
// taskID, as invalid_token.
func invalidToken(jti, taskID, detail string) *refusal.Error {
	return &refusal.Error{Kind: refusal.Unauthenticated, Code: credential.CodeInvalidToken, OAuth: credential.CodeInvalidToken,
		Detail: detail, JTI: jti, TaskID: taskID}
}

// tokenRefusal is a refusal from the credential package as it is
// answered and recorded; tok, when the signature verified, names the jti
// and task for the record.
func tokenRefusal(err error, tok *credential.Token) *refusal.Error {
	e := *credential.Refusal(err)
	if tok != nil {
		e.JTI, e.TaskID = tok.JTI, tok.TaskID
	}
	return &e
}

// accessToken reads the Authorization header: the token and whether the
// DPoP scheme was used. A request without one is refused without an OAuth
// code (the bare challenge, RFC 6750 §3.1).
func accessToken(r *http.Request) (string, bool, *refusal.Error) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", false, &refusal.Error{Kind: refusal.Unauthenticated, Code: "unauthorized",
			Detail: "send 'Authorization: Bearer <task token>' (or DPoP) obtained from POST /oauth2/token"}
	case len(h) > 1:
		return "", false, badAuthorization("more than one Authorization header")
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	tok = strings.TrimLeft(tok, " ")
	dpop := strings.EqualFold(scheme, "DPoP")
	if (!dpop && !strings.EqualFold(scheme, "Bearer")) || tok == "" {
		return "", dpop, badAuthorization("Authorization must be 'Bearer <task token>' or 'DPoP <task token>'")
	}
	return tok, dpop, nil
}

func badAuthorization(detail string) *refusal.Error {
	return &refusal.Error{Kind: refusal.Invalid, Code: credential.CodeInvalidRequest, OAuth: credential.CodeInvalidRequest, Detail: detail}
}

// refuseToken records e as auth.rejected (a request with no token at all
// is only counted) and answers it with {error, detail}, error being its
// OAuth code, and a WWW-Authenticate challenge (RFC 6750 §3, RFC 9449
// §7.1), of the DPoP scheme when dpop is set.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, e *refusal.Error, dpop bool) {
	if e.OAuth == "" {
		s.limits.Reject(r.Context(), abuse.NoCredentials, nil)
	} else {
		s.rejectExchange(r.Context(), e.TaskID, "", e.JTI, e.Code, e.Detail+" ("+r.Method+" "+r.URL.Path+")")
	}
	answerToken(w, e, dpop)
}

// answerToken answers a refused task token without recording it.
func answerToken(w http.ResponseWriter, e *refusal.Error, dpop bool) {
	w.Header().Set("WWW-Authenticate", challenge(e, dpop))
	code := e.OAuth
	if code == "" {
		code = e.Code
	}
	writeError(w, e.Kind, code, e.Detail)
}

func challenge(e *refusal.Error, dpop bool) string {
	c := credential.Challenge(nil, dpop || e.OAuth == credential.CodeInvalidDPoPProof)
	if e.OAuth == "" {
		return c
	}
	return c + `, error="` + bearer.Text(e.OAuth) + `", error_description="` + bearer.Text(e.Detail) + `"`
}

// dpopScheme reports whether the request used the DPoP scheme.
func dpopScheme(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "dpop ")
}
