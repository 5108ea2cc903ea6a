package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

func (s *Server) ledgerCheckpoint(w http.ResponseWriter, r *http.Request) {
	if s.witness != nil {
		s.witnessedCheckpoint(w, r)
		return
	}
	cp, err := s.dir.Store.LatestCheckpoint(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp.Note)
}

func (s *Server) ledgerKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s.dir.VerifierKey + "\n"))
}

// ledgerTile serves /ledger/tile/<L>/<N>[.p/<W>] and
// /ledger/tile/entries/<N>[.p/<W>]. Full tiles never change and are served as
// immutable; a partial tile's contents are fixed too, but a client should
// move to the full tile once the log grows.
func (s *Server) ledgerTile(w http.ResponseWriter, r *http.Request) {
	tp, err := ledger.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/ledger/"))
	if err != nil {
		writeError(w, refusal.NotFound, "not_found", "not a tlog-tiles path: "+r.URL.Path)
		return
	}
	size, err := s.dir.Store.Size(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var data []byte
	if tp.Entries {
		data, err = ledger.ReadEntryBundle(r.Context(), s.dir.Store, size, tp)
	} else {
		data, err = ledger.ReadTile(r.Context(), s.dir.Store, size, tp)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if tp.Width == ledger.TileWidth {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	w.Write(data)
}

// maxAppendEvents bounds the events in one NDJSON append request.
const maxAppendEvents = 4096

// appendEvent appends events: POST /v1/ledger/events with one api.Event, or
// with Content-Type application/x-ndjson and one event per line, committed
// together at consecutive indexes in line order (all or none).
func (s *Server) appendEvent(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	ndjson := httpjson.IsMediaType(ct, "application/x-ndjson")
	if !ndjson && !httpjson.JSONContentType(ct) {
		writeError(w, refusal.UnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json (one event) or application/x-ndjson (one event a line)")
		return
	}
	body, ok := readBody(w, r, ledger.MaxInputBytes)
	if !ok {
		return
	}
	if !ndjson {
		ev, err := ledger.DecodeEvent(body)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		idx, err := s.ledger.Append(r.Context(), ev)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, api.Appended{Index: idx})
		return
	}
	var events []ledger.Event
	var lineOf []int // request line of each event
	for i, line := range bytes.Split(body, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(events) == maxAppendEvents {
			writeError(w, refusal.TooLarge, "too_large", fmt.Sprintf("more than %d events in one request", maxAppendEvents))
			return
		}
		ev, err := ledger.DecodeEvent(line)
		if err != nil {
			writeJSON(w, refusal.Invalid.HTTPStatus(), api.Error{Error: "invalid_event", Detail: err.Error(), Line: i + 1})
			return
		}
		events = append(events, ev)
		lineOf = append(lineOf, i+1)
	}
	first, err := s.ledger.AppendAll(r.Context(), events)
	var ve *ledger.ValidationError
	if errors.As(err, &ve) && ve.Item < len(lineOf) {
		n := lineOf[ve.Item]
		writeJSON(w, refusal.Invalid.HTTPStatus(), api.Error{Error: "invalid_event", Detail: err.Error(), Line: n})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.AppendedAll{First: first, Count: len(events)})
}
