package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/credential"
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
	out, err := s.decider().Authorize(r.Context(), cred, req, task.Request{Gateway: gatewayAPI, Source: abuse.PeerHost(r), TraceID: traceID(r)})
	if err != nil {
		s.decisionFail(w, r, err)
		return
	}
	status := http.StatusOK
	if !out.Allow {
		status = http.StatusForbidden
	}
	writeJSON(w, status, out)
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
		s.decisionFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// decisionFail answers an error from Authorize or RecordResult. A refused
// credential (the task ended, the credential was revoked, between the
// token check and the decision) is a 401 like any token problem; the task
// service has recorded it.
func (s *Server) decisionFail(w http.ResponseWriter, r *http.Request, err error) {
	var te *task.Error
	if errors.As(err, &te) && errors.Is(te.Kind, task.ErrForbidden) {
		switch te.Code {
		case "unknown_task", "unknown_credential", "credential_revoked", "credential_expired", "task_not_active", "task_expired",
			task.ReasonAncestorEnded:
			dpop := strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "dpop ")
			// The task service recorded this refusal already.
			f := refusal{status: http.StatusUnauthorized, code: credential.CodeInvalidToken, detail: te.Detail, dpop: dpop}
			w.Header().Set("WWW-Authenticate", challenge(f))
			writeError(w, f.status, f.code, f.detail)
			return
		}
	}
	s.taskFail(w, r, err)
}

// taskCredential authenticates a decision API request by its task token:
// "Authorization: Bearer <token>", or "Authorization: DPoP <token>" with a
// DPoP proof. It answers 401 with a WWW-Authenticate challenge, and records
// auth.rejected (never with the token), when the token is refused.
func (s *Server) taskCredential(w http.ResponseWriter, r *http.Request) (task.VerifiedCredential, bool) {
	ctx := r.Context()
	raw, dpop, f := accessToken(r)
	if f != nil {
		s.refuse(w, r, *f)
		return task.VerifiedCredential{}, false
	}
	now := time.Now()
	tok, err := s.issuer.Verify(ctx, raw, now)
	if err != nil {
		s.refuse(w, r, refusalOf(err, nil, dpop))
		return task.VerifiedCredential{}, false
	}
	if !s.tasks.CredentialLive(tok.JTI) {
		s.refuse(w, r, refusal{status: http.StatusUnauthorized, code: credential.CodeInvalidToken, jti: tok.JTI, taskID: tok.TaskID, dpop: dpop,
			detail: "access token is no longer valid: its task has ended or it was revoked"})
		return task.VerifiedCredential{}, false
	}
	var jkt string
	if dpop {
		if tok.Cnf.JKT == "" {
			s.refuse(w, r, refusal{status: http.StatusUnauthorized, code: credential.CodeInvalidToken, jti: tok.JTI, taskID: tok.TaskID, dpop: dpop,
				detail: "access token is not DPoP-bound; send it with the Bearer scheme"})
			return task.VerifiedCredential{}, false
		}
		proof, err := credential.DPoPProof(r.Header)
		if err == nil {
			jkt, err = credential.VerifyDPoP(proof, r.Method, s.htu(r), raw, now, s.replay)
		}
		if err != nil {
			s.refuse(w, r, refusalOf(err, tok, true))
			return task.VerifiedCredential{}, false
		}
	}
	if err := credential.CheckBinding(tok, jkt, clientCert(r), s.requireBinding); err != nil {
		s.refuse(w, r, refusalOf(err, tok, dpop || tok.Cnf.JKT != ""))
		return task.VerifiedCredential{}, false
	}
	if res := s.resourceOf(r); !tok.AcceptedAt(res) {
		s.refuse(w, r, refusal{status: http.StatusUnauthorized, code: credential.CodeInvalidToken, jti: tok.JTI, taskID: tok.TaskID, dpop: dpop,
			detail: "access token was issued for resource " + tok.Resource + ", not " + res + "; ask the token endpoint for one with this resource"})
		return task.VerifiedCredential{}, false
	}
	if !s.limits.Admit(w, r, tok.Agent()) {
		return task.VerifiedCredential{}, false
	}
	return task.VerifiedCredential{JTI: tok.JTI, TaskID: tok.TaskID, Agent: tok.Agent(), Subject: tok.Subject,
		Expiry: tok.Expiry, Binding: bindingName(tok.Cnf), ActChain: tok.Actors}, true
}

// refusal is a refused task token: the answer and what to record.
type refusal struct {
	status       int
	code, detail string
	// jti and taskID are set only when the token's signature verified.
	jti, taskID string
	dpop        bool // answer with the DPoP challenge
	bare        bool // no token at all: the bare challenge (RFC 6750 §3.1)
}

// refusalOf describes a refusal from the credential package. tok, when
// the signature verified, names the jti and task for the record.
func refusalOf(err error, tok *credential.Token, dpop bool) refusal {
	f := refusal{status: credential.HTTPStatus(err), code: credential.ErrorCode(err), detail: credential.Description(err), dpop: dpop}
	var e *credential.Error
	if errors.As(err, &e) {
		f.jti, f.taskID = e.JTI, e.TaskID
	}
	if tok != nil {
		f.jti, f.taskID = tok.JTI, tok.TaskID
	}
	return f
}

// accessToken reads the Authorization header: the token and whether the
// DPoP scheme was used.
func accessToken(r *http.Request) (string, bool, *refusal) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", false, &refusal{status: http.StatusUnauthorized, code: "unauthorized", bare: true,
			detail: "send 'Authorization: Bearer <task token>' (or DPoP) obtained from POST /oauth2/token"}
	case len(h) > 1:
		return "", false, &refusal{status: http.StatusBadRequest, code: credential.CodeInvalidRequest, detail: "more than one Authorization header"}
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	tok = strings.TrimLeft(tok, " ")
	dpop := strings.EqualFold(scheme, "DPoP")
	if (!dpop && !strings.EqualFold(scheme, "Bearer")) || tok == "" {
		return "", dpop, &refusal{status: http.StatusBadRequest, code: credential.CodeInvalidRequest, dpop: dpop,
			detail: "Authorization must be 'Bearer <task token>' or 'DPoP <task token>'"}
	}
	return tok, dpop, nil
}

// refuse records f as auth.rejected (a request with no token at all is
// only counted) and answers it with {error, detail} and a WWW-Authenticate
// challenge (RFC 6750 §3, RFC 9449 §7.1).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, f refusal) {
	if f.bare {
		s.limits.Reject(r.Context(), abuse.NoCredentials, nil)
	} else {
		s.rejectExchange(r.Context(), f.taskID, "", f.jti, f.code, f.detail+" ("+r.Method+" "+r.URL.Path+")")
	}
	w.Header().Set("WWW-Authenticate", challenge(f))
	writeError(w, f.status, f.code, f.detail)
}

func challenge(f refusal) string {
	dpop := f.dpop || f.code == credential.CodeInvalidDPoPProof
	c := credential.Challenge(nil, dpop)
	if f.bare {
		return c
	}
	return c + `, error="` + bearer.Text(f.code) + `", error_description="` + bearer.Text(f.detail) + `"`
}
