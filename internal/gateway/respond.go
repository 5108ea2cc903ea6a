package gateway

import (
	"net/http"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/refusal"
)

// writeError writes {error, detail} with the status of kind.
func writeError(w http.ResponseWriter, kind refusal.Kind, code, detail string) {
	httpjson.Error(w, kind, code, detail)
}

// jsonErrors turns the MCP SDK's plain-text HTTP errors (an unknown or
// ended session, a session of another task's, an unsupported protocol
// version, a wrong Accept or Content-Type) into writ's {error, detail}
// JSON answer; everything else, event streams included, passes through as
// written.
type jsonErrors struct {
	http.ResponseWriter
	code   int    // the status answered
	status int    // of an error being rewritten
	detail []byte // its text
}

func (j *jsonErrors) WriteHeader(status int) {
	if j.code == 0 {
		j.code = status
	}
	if status >= 400 && j.status == 0 && strings.HasPrefix(j.Header().Get("Content-Type"), "text/plain") {
		j.status = status
		return
	}
	j.ResponseWriter.WriteHeader(status)
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if j.code == 0 {
		j.code = http.StatusOK
	}
	if j.status == 0 {
		return j.ResponseWriter.Write(b)
	}
	if len(j.detail) < 1024 {
		j.detail = append(j.detail, b[:min(len(b), 1024-len(j.detail))]...)
	}
	return len(b), nil
}

func (j *jsonErrors) Flush() {
	if f, ok := j.ResponseWriter.(http.Flusher); ok && j.status == 0 {
		f.Flush()
	}
}

func (j *jsonErrors) Unwrap() http.ResponseWriter { return j.ResponseWriter }

// finish writes the rewritten error, if there is one.
func (j *jsonErrors) finish() {
	if j.status == 0 {
		return
	}
	detail := strings.TrimSpace(string(j.detail))
	code := strings.ReplaceAll(strings.ToLower(http.StatusText(j.status)), " ", "_")
	if code == "" {
		code = "error"
	}
	j.Header().Del("Content-Length")
	// The status is the SDK's; only the body becomes writ's.
	httpjson.Write(j.ResponseWriter, j.status, api.Error{Error: code, Detail: detail})
}

// challengeWriter adds resource_metadata (RFC 9728 §5.1) to the
// WWW-Authenticate challenge of a 401 or 403 answer, so that MCP clients
// find where to obtain a token.
func challengeWriter(w http.ResponseWriter, metadata func(*http.Request, string) string, r *http.Request, server string) http.ResponseWriter {
	if metadata == nil {
		return w
	}
	return &challenger{ResponseWriter: w, url: metadata(r, server)}
}

type challenger struct {
	http.ResponseWriter
	url string
}

func (c *challenger) WriteHeader(status int) {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		h := c.Header()
		param := `resource_metadata="` + bearer.Text(c.url) + `"`
		if v := h.Get("WWW-Authenticate"); v != "" {
			h.Set("WWW-Authenticate", v+", "+param)
		} else {
			h.Set("WWW-Authenticate", `Bearer `+param)
		}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *challenger) Write(b []byte) (int, error) { return c.ResponseWriter.Write(b) }
