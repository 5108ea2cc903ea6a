package server

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

// newCredentials builds the credential issuer (loading or creating its key
// in the data directory) and the DPoP replay cache. Revocations are loaded
// once the task service has replayed the ledger (loadRevocations).
func (s *Server) newCredentials() error {
	c := s.cfg.Credentials
	var err error
	s.issuer, err = credential.NewIssuer(s.cfg.DataDir, credential.IssuerOptions{
		Issuer: c.IssuerName(), MaxTTL: c.MaxTTL, KeyFile: c.KeyFile,
	})
	if err != nil {
		return err
	}
	s.replay = credential.NewReplayCache(credential.DefaultReplayEntries)
	// The store keeps a durable record of accepted DPoP proofs (shared by
	// replicas on one database), so a proof replayed after a restart, or
	// to another replica, is refused as well.
	if shared, ok := s.dir.Store.(interface {
		ClaimProof(ctx context.Context, key []byte, until time.Time) (bool, error)
	}); ok {
		s.replay.Share(shared.ClaimProof)
	}
	s.requireBinding = slices.Contains(c.RequireBinding, s.cfg.Environment)
	return nil
}

// onRevoke is the task service's OnRevoke: a credential revocation is
// durable, so the token is refused from now on, and the MCP gateway's
// calls made with it are cancelled. Its exp is at most MaxTTL
// away, so the entry is kept that long.
func (s *Server) onRevoke(jti string) {
	s.issuer.Revocations().RevokeJTI(jti, time.Now().Add(s.cfg.Credentials.MaxTTL))
	if g := s.mcp.Load(); g != nil {
		g.CredentialRevoked(jti)
	}
	if p := s.proxy.Load(); p != nil {
		p.CredentialRevoked(jti)
	}
}

// loadRevocations fills the issuer's revocation set from the task state
// replayed from the ledger: every revoked credential that has not expired,
// and every task that ended within the longest token lifetime.
func (s *Server) loadRevocations() {
	now := time.Now()
	var jtis []credential.RevokedJTI
	for _, c := range s.tasks.RevokedCredentials(now.Add(-credential.ClockSkew)) {
		jtis = append(jtis, credential.RevokedJTI{JTI: c.JTI, Expiry: c.ExpiresAt})
	}
	tasks := s.tasks.EndedTasks(now.Add(-s.cfg.Credentials.MaxTTL - credential.ClockSkew))
	s.issuer.Revocations().Load(jtis, tasks)
}

// jwks serves the public key set of writ access tokens (RFC 7517), so
// resource servers and auditors can check them offline. It is public.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(s.issuer.JWKS())
}

// exchangeToken answers POST /oauth2/token, RFC 8693 token exchange: an
// agent's identity token (or, for delegation, a parent task token and the
// child agent's identity token) for a task access token. It decodes the
// request, authenticates its tokens and DPoP proof, and asks the task
// service (Exchange), which decides, issues and records the credential
// before the token is sent.
func (s *Server) exchangeToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	x, err := credential.ParseExchange(r)
	if err != nil {
		// Not a credential to record; its address is charged for it.
		s.limits.Reject(ctx, "invalid_request", nil)
		credential.WriteExchangeError(w, err)
		return
	}
	resource, detail := s.target(r, x)
	if detail != "" {
		credential.WriteOAuthError(w, http.StatusBadRequest, credential.CodeInvalidTarget, detail)
		return
	}
	now := time.Now()
	req := task.Exchange{TaskID: x.TaskID, Resource: resource}
	var ok bool
	if x.Delegation() {
		req.Parent, req.Agent, ok = s.delegationTokens(w, r, x, now)
	} else {
		req.Agent, ok = s.agentIdentity(w, r, x.SubjectToken, "subject_token")
	}
	if !ok || !s.limits.Admit(w, r, req.Agent.ID) {
		return
	}
	if req.Cnf, ok = s.exchangeBinding(w, r, x, req, now); !ok {
		return
	}
	out, err := s.tasks.Exchange(ctx, req, task.Request{Gateway: policy.GatewayToken, Source: abuse.PeerHost(r), TraceID: traceID(r)})
	if err != nil {
		s.exchangeFail(w, r, err)
		return
	}
	credential.WriteToken(w, out.Token, out.ExpiresIn, out.Scope, out.DPoP)
}

// exchangeBinding is the binding the exchange request proves: a DPoP proof
// (no ath at the token endpoint), else the verified TLS client
// certificate. A bound parent token is honoured only when the request
// proves its key or certificate.
func (s *Server) exchangeBinding(w http.ResponseWriter, r *http.Request, x credential.ExchangeRequest, req task.Exchange, now time.Time) (credential.Cnf, bool) {
	var cnf credential.Cnf
	proof, err := credential.DPoPProof(r.Header)
	if err == nil && proof != "" {
		cnf.JKT, err = credential.VerifyDPoP(proof, r.Method, s.htu(r), "", now, s.replay)
	}
	if err != nil {
		credential.WriteExchangeError(w, err)
		return cnf, false
	}
	cert := clientCert(r)
	if cnf.JKT == "" && cert != nil {
		cnf.X5T = credential.X5T(cert)
	}
	if p := req.Parent; p != nil {
		if err := credential.CheckBinding(p, cnf.JKT, cert, false); err != nil {
			s.rejectExchange(r.Context(), x.TaskID, req.Agent.ID, p.JTI, "binding_mismatch", credential.Description(err))
			credential.WriteExchangeError(w, err)
			return cnf, false
		}
	}
	return cnf, true
}

// agentIdentity verifies an agent's identity token (JWT-SVID or OIDC),
// answering invalid_grant and recording the refusal when it fails.
func (s *Server) agentIdentity(w http.ResponseWriter, r *http.Request, raw, param string) (identity.Principal, bool) {
	ctx := r.Context()
	p, err := s.auth.VerifyToken(ctx, raw)
	if err != nil {
		reason, detail := "invalid_token", param+" refused"
		if e, ok := refusal.As(err); ok {
			reason, detail = e.Code, param+" refused: "+e.Detail
		}
		s.rejectExchange(ctx, "", "", "", reason, detail)
		credential.WriteOAuthError(w, http.StatusBadRequest, credential.CodeInvalidGrant, detail)
		return p, false
	}
	if p.Kind != identity.KindAgent {
		s.rejectExchange(ctx, "", "", "", "not_an_agent", param+" identifies a human, not an agent")
		credential.WriteOAuthError(w, http.StatusBadRequest, credential.CodeInvalidGrant,
			param+" must be an agent identity (a JWT-SVID, or an OIDC token from an issuer of kind agent)")
		return p, false
	}
	return p, true
}

// delegationTokens authenticates a delegation exchange: the subject token
// must be a live writ access token (of the parent task) and the actor
// token the child agent's identity. Whether the task may be delegated to
// is the task service's to decide.
func (s *Server) delegationTokens(w http.ResponseWriter, r *http.Request, x credential.ExchangeRequest, now time.Time) (*credential.Token, identity.Principal, bool) {
	ctx := r.Context()
	parent, err := s.issuer.Verify(ctx, x.SubjectToken, now)
	if err != nil {
		if e, ok := refusal.As(err); ok {
			s.rejectExchange(ctx, e.TaskID, "", e.JTI, "invalid_token", "subject_token: "+e.Detail)
		}
		credential.WriteExchangeError(w, err)
		return nil, identity.Principal{}, false
	}
	if !s.tasks.CredentialLive(parent.JTI) {
		s.rejectExchange(ctx, parent.TaskID, parent.Agent(), parent.JTI, "credential_revoked", "the subject token's task has ended or the token was revoked")
		credential.WriteOAuthError(w, http.StatusBadRequest, credential.CodeInvalidGrant, "the subject token's task has ended or the token was revoked")
		return nil, identity.Principal{}, false
	}
	p, ok := s.agentIdentity(w, r, x.ActorToken, "actor_token")
	return parent, p, ok
}

// target resolves the exchange's audience (RFC 8693) and resource (RFC
// 8707) to the resource the token is bound to: "" for writ's own audience,
// which every enforcement point accepts (no resource, or writ's base URL),
// else one resource writ serves (servedResource). detail says why not when
// the request names anything else.
func (s *Server) target(r *http.Request, x credential.ExchangeRequest) (resource, detail string) {
	for _, a := range x.Audience {
		if a != "writ" && a != s.cfg.Credentials.IssuerName() {
			return "", "writ issues tokens only for its own audience (\"writ\"); name an enforcement point with resource instead"
		}
	}
	base := s.baseURL(r)
	for _, res := range x.Resource {
		res = strings.TrimSuffix(res, "/")
		switch {
		case res == base:
			continue
		case !s.servedResource(base, res):
			return "", "writ serves no such resource; name " + base + decisionResource + ", " + base + "/mcp/<server> or " + base + "/proxy/<upstream> of a configured server or upstream"
		case resource != "" && res != resource:
			return "", "a token is bound to one resource; ask for one token per resource"
		}
		resource = res
	}
	return resource, ""
}

// decisionResource is the path of the decision API as a resource: a token
// bound to it is accepted at /v1/authorize and /v1/actions/{id}/result.
const decisionResource = "/v1/authorize"

// servedResource reports whether res is an enforcement point of writ at
// base: the decision API, a configured MCP server or a proxy upstream.
func (s *Server) servedResource(base, res string) bool {
	rest, ok := strings.CutPrefix(res, base)
	if !ok {
		return false
	}
	if rest == decisionResource {
		return true
	}
	kind, name, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	switch kind {
	case "mcp":
		_, ok = s.cfg.MCP.Servers[name]
	case "proxy":
		_, ok = s.cfg.Proxy.Upstreams[name]
	default:
		ok = false
	}
	return ok && rest == "/"+kind+"/"+name
}

// resourceOf is the resource a request to writ uses a task token at: its
// MCP server or proxy upstream, else the decision API.
func (s *Server) resourceOf(r *http.Request) string {
	base := s.baseURL(r)
	for _, kind := range []string{"/mcp/", "/proxy/"} {
		if rest, ok := strings.CutPrefix(r.URL.Path, kind); ok {
			name, _, _ := strings.Cut(rest, "/")
			return base + kind + name
		}
	}
	return base + decisionResource
}

// exchangeFail answers an error of the task service's Exchange: a refusal
// with its OAuth code, a failure to record as temporarily_unavailable. No
// token was sent, so nothing is granted.
func (s *Server) exchangeFail(w http.ResponseWriter, r *http.Request, err error) {
	_, refused := refusal.As(err)
	switch {
	case refused:
		credential.WriteExchangeError(w, err)
	case errors.Is(err, ledger.ErrUnavailable), errors.Is(err, ledger.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.log.ErrorContext(r.Context(), "recording a credential failed; no token sent", "err", err)
		credential.WriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			"the ledger could not record the credential; no token was issued")
	default:
		s.log.ErrorContext(r.Context(), "recording a credential failed", "err", err)
		credential.WriteOAuthError(w, http.StatusInternalServerError, "server_error", "internal error; see the server log")
	}
}

// rejectExchange records a refused exchange as auth.rejected, as the
// rate limits allow. The refusal stands whether or not the record is
// durable; the limits count and log a record that failed.
func (s *Server) rejectExchange(ctx context.Context, taskID, agent, jti, reason, detail string) {
	_ = s.tasks.RecordRejection(ctx, task.Rejection{TaskID: taskID, Agent: agent, JTI: jti, Reason: reason, Detail: detail})
}

// baseURL is writ's URL as the client addressed it: credentials.public_url,
// else the request's scheme and Host.
func (s *Server) baseURL(r *http.Request) string {
	if u := s.cfg.Credentials.PublicURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// htu is the request URI a DPoP proof must name.
func (s *Server) htu(r *http.Request) string { return s.baseURL(r) + r.URL.Path }

// clientCert is the verified TLS client certificate, or nil.
func clientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// traceID is the trace-id of the request's W3C traceparent header, or "".
func traceID(r *http.Request) string { return enforce.TraceID(r.Header.Get("Traceparent")) }
