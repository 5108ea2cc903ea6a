package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError writes {error, detail} with the status of kind.
func writeError(w http.ResponseWriter, kind refusal.Kind, code, detail string) {
	httpjson.Error(w, kind, code, detail)
}

// fail maps an error from the layers below to an HTTP answer: the one place
// where status codes are chosen for errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ledger.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, refusal.Invalid, "invalid_event", ve.Error())
	case errors.Is(err, ledger.ErrNotFound):
		writeError(w, refusal.NotFound, "not_found", err.Error())
	case errors.Is(err, ledger.ErrClosed):
		writeError(w, refusal.Unavailable, "shutting_down", "the server is shutting down")
	case errors.Is(err, ledger.ErrUnavailable):
		s.log.ErrorContext(r.Context(), "ledger unavailable", "err", err, "path", r.URL.Path)
		writeError(w, refusal.Unavailable, "ledger_unavailable", "the ledger could not record this durably; nothing was acknowledged")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, refusal.Unavailable, "timeout", "the request was cancelled before it completed")
	default:
		s.log.ErrorContext(r.Context(), "internal error", "err", err, "path", r.URL.Path)
		writeError(w, refusal.Internal, "internal", "internal error; see the server log")
	}
}

// readBody reads a request body up to limit bytes, answering 413 past it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	return httpjson.ReadBody(w, r, limit)
}
