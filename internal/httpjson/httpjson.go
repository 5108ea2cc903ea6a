// Package httpjson writes writ's JSON answers and reads request bodies the
// same way for every HTTP surface (the API, the MCP gateway, the proxy):
// errors are {"error": code, "detail": text}, bodies are size-limited, and
// the API's JSON bodies are decoded strictly (Decode, Unmarshal).
package httpjson

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/refusal"
)

// Write writes v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	writeHeader(w, status)
	json.NewEncoder(w).Encode(v)
}

// WriteEncoded writes body, JSON already encoded, with the given status and
// Write's headers, ending it with the newline Write's encoder ends with.
func WriteEncoded(w http.ResponseWriter, status int, body []byte) {
	writeHeader(w, status)
	w.Write(append(body, '\n'))
}

func writeHeader(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
}

// Error writes {error, detail} with the status of kind
// (refusal.Kind.HTTPStatus): whoever answers an error says what kind it is,
// and the status follows from that in one place.
func Error(w http.ResponseWriter, kind refusal.Kind, code, detail string) {
	Write(w, kind.HTTPStatus(), api.Error{Error: code, Detail: detail})
}

// ReadBody reads a request body up to limit bytes. Past the limit it
// answers 413 too_large, on a read error 400 bad_request, and returns
// false.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	buf, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			Error(w, refusal.TooLarge, "too_large", "request body is larger than the limit")
		} else {
			Error(w, refusal.Invalid, "bad_request", "could not read the request body")
		}
		return nil, false
	}
	return buf, true
}
