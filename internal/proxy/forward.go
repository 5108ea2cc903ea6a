package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/tracing"
)

// ruleHandler forwards requests that match one rule.
type ruleHandler struct {
	p    *Proxy
	u    *upstream
	rule config.ProxyRule
}

func (h *ruleHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, ok := r.Context().Value(ctxKey{}).(verified)
	if !ok {
		writeError(w, refusal.Unauthenticated, "unauthorized", "no verified task credential")
		return
	}
	u := h.u
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeError(w, refusal.UnsupportedMediaType, "unsupported_encoding", "writ decides on a request body as it is: send it without Content-Encoding")
		return
	}
	body, ok := readBody(w, r, u.maxBody)
	if !ok {
		return
	}
	// What policy sees is what the upstream is sent: the query as parsed,
	// re-encoded; the body as it is, judged by its content.
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, refusal.Invalid, "bad_query", err.Error())
		return
	}
	args := map[string]any{"method": r.Method, "path": r.URL.EscapedPath()}
	if r.URL.RawQuery != "" {
		args["query"] = q.values()
	}
	if len(body) > 0 {
		key, val, err := bodyField(body)
		var inexact *inexactError
		if errors.As(err, &inexact) {
			writeError(w, refusal.Invalid, task.CodeInexactNumber, err.Error())
			return
		}
		if err != nil {
			writeError(w, refusal.Invalid, "bad_body", err.Error())
			return
		}
		args[key] = val
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		writeError(w, refusal.Invalid, "bad_request", "the request cannot be recorded")
		return
	}
	areq := api.Authorize{Tool: h.rule.Tool, Operation: h.rule.Operation, Resource: Expand(h.rule.Resource, pathValues(r)),
		Arguments: argsJSON, DataClass: h.rule.DataClass}
	rc := task.Request{Gateway: policy.GatewayProxy, Source: abuse.PeerHost(r), TraceID: enforce.TraceID(r.Header.Get("Traceparent"))}
	span, r := h.trace(r)
	defer span.End()
	// From here the call is cancelled when its task ends.
	ctx, done := h.p.calls.Begin(r.Context(), v.cred)
	defer done()
	out, err := h.p.cfg.Decider.Authorize(r.Context(), v.cred, areq, rc)
	if err != nil {
		h.decisionFail(w, r, err)
		return
	}
	if !out.Allow {
		code := "denied"
		if out.ApprovalRequired {
			code = "approval_required"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refusal.Forbidden.HTTPStatus())
		json.NewEncoder(w).Encode(struct {
			api.Error
			api.Authorized
		}{api.Error{Error: code, Detail: "writ did not forward this request to " + u.name + " (decision " + out.DecisionID + ")"}, out})
		return
	}
	if cause := task.CutShort(ctx); cause != nil {
		h.cancelled(w, r, v.cred, rc, out.ActionID, cause)
		return
	}

	outReq, err := http.NewRequestWithContext(ctx, r.Method, u.target(r.URL, q.encode()), bytes.NewReader(body))
	if err != nil {
		h.record(r.Context(), v.cred, rc, out.ActionID, "error", map[string]any{"error": "bad upstream URL"})
		writeError(w, refusal.UpstreamFailed, "bad_gateway", "the upstream URL cannot be built")
		return
	}
	// Only the allowed headers of the agent's go, never its credentials;
	// Accept-Encoding is Go's transport's, which then decodes gzip itself,
	// so that what is recorded is the body, not its encoding.
	outReq.Header = requestHeaders(r.Header, u.forward)
	for k, vs := range u.headers {
		outReq.Header[k] = vs
	}
	outReq.ContentLength = int64(len(body))
	if span.On() {
		tracing.Inject(ctx, outReq.Header)
	}
	resp, err := u.client.Do(outReq)
	if err != nil {
		if cause := task.CutShort(ctx); cause != nil {
			h.cancelled(w, r, v.cred, rc, out.ActionID, cause)
			return
		}
		detail := "upstream " + u.name + " did not answer"
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			detail = "upstream " + u.name + " did not answer within " + u.timeout.String()
		}
		h.record(r.Context(), v.cred, rc, out.ActionID, "error", map[string]any{"error": detail})
		span.Fail("upstream_unavailable", "the upstream did not answer")
		writeError(w, refusal.UpstreamFailed, "upstream_unavailable", detail+" (action "+out.ActionID+")")
		return
	}
	defer resp.Body.Close()
	dropHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Writ-Action-Id", out.ActionID)
	w.WriteHeader(resp.StatusCode)
	// The agent has the headers at once, even of a stream yet to begin.
	http.NewResponseController(w).Flush()
	capture := &capped{max: u.maxBody}
	copyErr := stream(ctx, w, resp.Body, capture)
	cause := task.CutShort(ctx)
	status := "ok"
	switch {
	case cause != nil:
		status = "cancelled"
	case resp.StatusCode >= 400 || copyErr != nil:
		status = "error"
	}
	output := map[string]any{"status": resp.StatusCode}
	if capture.buf.Len() > 0 {
		b := capture.buf.Bytes()
		if capture.truncated {
			b = trimPartialRune(b)
		}
		key, val, _ := bodyField(b)
		output[key] = val
	}
	if capture.truncated {
		output["truncated"] = true
	}
	switch {
	case cause != nil:
		output["error"] = cause.Error() + "; writ cancelled it and withheld the rest of the response"
	case copyErr != nil:
		output["error"] = "the response was cut short"
	}
	h.record(r.Context(), v.cred, rc, out.ActionID, status, output)
	endCall(span, resp.StatusCode, status)
	if cause != nil {
		// Break the connection: a clean end would pass the cut-off
		// response for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// cancelled answers and records a call whose task ended before its
// response began.
func (h *ruleHandler) cancelled(w http.ResponseWriter, r *http.Request, cred task.VerifiedCredential, rc task.Request, actionID string, cause error) {
	h.record(r.Context(), cred, rc, actionID, "cancelled", map[string]any{"error": cause.Error() + "; writ cancelled it"})
	detail := cause.Error() + "; writ cancelled it (action " + actionID + ")"
	w.Header().Set("WWW-Authenticate", `Bearer realm="writ", error="invalid_token", error_description="`+bearer.Text(detail)+`"`)
	writeError(w, refusal.Unauthenticated, "invalid_token", detail)
}

// record writes action.completed. The response has been sent by now; a
// failure to record is logged for the operator.
func (h *ruleHandler) record(ctx context.Context, cred task.VerifiedCredential, rc task.Request, actionID, status string, output map[string]any) {
	b, _ := json.Marshal(output)
	if _, err := h.p.cfg.Decider.RecordResultAt(context.WithoutCancel(ctx), cred, actionID, api.ActionResult{Status: status, Output: b}, rc); err != nil {
		h.p.log.Error("recording a proxied response failed", "upstream", h.u.name, "action_id", actionID, "err", err)
	}
}

// decisionFail answers an error of the task service: a refusal with the
// status of its kind (a credential that may no longer act with an RFC 6750
// challenge), anything else as 503: nothing was forwarded.
func (h *ruleHandler) decisionFail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := refusal.As(err); ok {
		if e.Kind == refusal.Unauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="writ", error="`+bearer.Text(e.OAuth)+`"`)
		}
		writeError(w, e.Kind, e.Code, e.Detail)
		return
	}
	h.p.log.ErrorContext(r.Context(), "proxy decision failed; denied", "upstream", h.u.name, "err", err)
	writeError(w, refusal.Unavailable, "ledger_unavailable", "writ could not decide and record this request; it was not forwarded")
}

// target is the upstream URL for a request path below the prefix, with
// the query that was decided.
func (u *upstream) target(in *url.URL, rawQuery string) string {
	t := strings.TrimRight(u.base.String(), "/") + in.EscapedPath()
	if rawQuery != "" {
		t += "?" + rawQuery
	}
	return t
}

// stream copies the response, flushing as it goes so that event streams
// pass through as they are written, and keeps what it passed on in
// capture. Once writ has stopped the call (stopped), nothing more is
// passed on.
func stream(ctx context.Context, w http.ResponseWriter, r io.Reader, capture *capped) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if cause := task.CutShort(ctx); cause != nil {
				return cause
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			capture.Write(buf[:n])
			rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf       bytes.Buffer
	max       int64
	truncated bool
}

func (c *capped) Write(b []byte) (int, error) {
	room := c.max - int64(c.buf.Len())
	if int64(len(b)) > room {
		c.buf.Write(b[:max(room, 0)])
		c.truncated = true
	} else {
		c.buf.Write(b)
	}
	return len(b), nil
}

// trimPartialRune drops the bytes of a UTF-8 sequence cut off at the end
// of a truncated capture, so that truncated text is recorded as text.
func trimPartialRune(b []byte) []byte {
	for cut := 1; cut <= utf8.UTFMax-1 && cut < len(b) && !utf8.Valid(b); cut++ {
		if utf8.Valid(b[:len(b)-cut]) {
			return b[:len(b)-cut]
		}
	}
	return b
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	return httpjson.ReadBody(w, r, limit)
}
