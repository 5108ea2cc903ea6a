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

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/task"
)

// ruleHandler forwards requests that match one rule.
type ruleHandler struct {
	p    *Proxy
	u    *upstream
	rule config.ProxyRule
}

// hopHeaders are not forwarded in either direction (RFC 9110 §7.6.1), nor
// are the agent's credentials.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (h *ruleHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, ok := r.Context().Value(ctxKey{}).(verified)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "no verified task credential")
		return
	}
	u := h.u
	body, ok := readBody(w, r, u.maxBody)
	if !ok {
		return
	}
	args := map[string]any{"method": r.Method, "path": r.URL.EscapedPath()}
	if r.URL.RawQuery != "" {
		args["query"] = r.URL.Query()
	}
	if len(body) > 0 {
		args["body"] = bodyValue(body, r.Header.Get("Content-Type"))
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the request cannot be recorded")
		return
	}
	areq := api.Authorize{Tool: h.rule.Tool, Operation: h.rule.Operation, Resource: Expand(h.rule.Resource, pathValues(r)),
		Arguments: argsJSON, DataClass: h.rule.DataClass}
	rc := task.Request{Gateway: "proxy", Source: remoteHost(r), TraceID: traceID(r.Header.Get("Traceparent"))}
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
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(struct {
			api.Error
			api.Authorized
		}{api.Error{Error: code, Detail: "writ did not forward this request to " + u.name + " (decision " + out.DecisionID + ")"}, out})
		return
	}

	outReq, err := http.NewRequestWithContext(r.Context(), r.Method, u.target(r.URL), bytes.NewReader(body))
	if err != nil {
		h.record(r.Context(), v.cred, rc, out.ActionID, "error", map[string]any{"error": "bad upstream URL"})
		writeError(w, http.StatusBadGateway, "bad_gateway", "the upstream URL cannot be built")
		return
	}
	outReq.Header = r.Header.Clone()
	// Accept-Encoding goes too: Go's transport then asks for gzip itself and
	// decodes it, so that what is recorded is the body, not its encoding.
	for _, k := range append(hopHeaders, "Authorization", "Dpop", "Cookie", "Forwarded", "X-Forwarded-For", "Accept-Encoding") {
		outReq.Header.Del(k)
	}
	for k, vs := range u.headers {
		outReq.Header[k] = vs
	}
	outReq.ContentLength = int64(len(body))
	resp, err := u.client.Do(outReq)
	if err != nil {
		detail := "upstream " + u.name + " did not answer"
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			detail = "upstream " + u.name + " did not answer within " + u.timeout.String()
		}
		h.record(r.Context(), v.cred, rc, out.ActionID, "error", map[string]any{"error": detail})
		writeError(w, http.StatusBadGateway, "upstream_unavailable", detail+" (action "+out.ActionID+")")
		return
	}
	defer resp.Body.Close()
	for _, k := range hopHeaders {
		resp.Header.Del(k)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Writ-Action-Id", out.ActionID)
	w.WriteHeader(resp.StatusCode)
	capture := &capped{max: u.maxBody}
	copyErr := stream(w, io.TeeReader(resp.Body, capture))
	status := "ok"
	if resp.StatusCode >= 400 || copyErr != nil {
		status = "error"
	}
	output := map[string]any{"status": resp.StatusCode}
	if capture.buf.Len() > 0 {
		output["body"] = bodyValue(capture.buf.Bytes(), resp.Header.Get("Content-Type"))
	}
	if capture.truncated {
		output["truncated"] = true
	}
	if copyErr != nil {
		output["error"] = "the response was cut short"
	}
	h.record(r.Context(), v.cred, rc, out.ActionID, status, output)
}

// record writes action.completed. The response has been sent by now; a
// failure to record is logged for the operator.
func (h *ruleHandler) record(ctx context.Context, cred task.VerifiedCredential, rc task.Request, actionID, status string, output map[string]any) {
	b, _ := json.Marshal(output)
	if _, err := h.p.cfg.Decider.RecordResultAt(context.WithoutCancel(ctx), cred, actionID, api.ActionResult{Status: status, Output: b}, rc); err != nil {
		h.p.log.Error("recording a proxied response failed", "upstream", h.u.name, "action_id", actionID, "err", err)
	}
}

func (h *ruleHandler) decisionFail(w http.ResponseWriter, r *http.Request, err error) {
	var te *task.Error
	if errors.As(err, &te) {
		status := http.StatusForbidden
		if errors.Is(te.Kind, task.ErrInvalid) {
			status = http.StatusBadRequest
		} else if errors.Is(te.Kind, task.ErrForbidden) {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Bearer realm="writ", error="invalid_token"`)
		}
		writeError(w, status, te.Code, te.Detail)
		return
	}
	h.p.log.ErrorContext(r.Context(), "proxy decision failed; denied", "upstream", h.u.name, "err", err)
	writeError(w, http.StatusServiceUnavailable, "ledger_unavailable", "writ could not decide and record this request; it was not forwarded")
}

// target is the upstream URL for a request path below the prefix.
func (u *upstream) target(in *url.URL) string {
	t := strings.TrimRight(u.base.String(), "/") + in.EscapedPath()
	if in.RawQuery != "" {
		t += "?" + in.RawQuery
	}
	return t
}

// stream copies the response, flushing as it goes so that event streams
// pass through as they are written.
func stream(w http.ResponseWriter, r io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
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

// bodyValue is a body as recorded: its JSON value when it is JSON, else
// its text.
func bodyValue(b []byte, contentType string) any {
	if strings.Contains(contentType, "json") && json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	return httpjson.ReadBody(w, r, limit)
}
