package refusal

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestKindStatus(t *testing.T) {
	for _, tt := range []struct {
		kind   Kind
		name   string
		status int
	}{
		{Invalid, "invalid", http.StatusBadRequest},
		{Unauthenticated, "unauthenticated", http.StatusUnauthorized},
		{Forbidden, "forbidden", http.StatusForbidden},
		{NotFound, "not_found", http.StatusNotFound},
		{Conflict, "conflict", http.StatusConflict},
		{TooLarge, "too_large", http.StatusRequestEntityTooLarge},
		{UnsupportedMediaType, "unsupported_media_type", http.StatusUnsupportedMediaType},
		{RateLimited, "rate_limited", http.StatusTooManyRequests},
		{Internal, "internal", http.StatusInternalServerError},
		{UpstreamFailed, "upstream_failed", http.StatusBadGateway},
		{Unavailable, "unavailable", http.StatusServiceUnavailable},
		{0, "Kind(0)", http.StatusInternalServerError},
		{200, "Kind(200)", http.StatusInternalServerError},
	} {
		if got := tt.kind.String(); got != tt.name {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(tt.kind), got, tt.name)
		}
		if got := tt.kind.HTTPStatus(); got != tt.status {
			t.Errorf("%s.HTTPStatus() = %d, want %d", tt.name, got, tt.status)
		}
	}
}

func TestErrorWrapping(t *testing.T) {
	sentinel := errors.New("forbidden")
	e := New(Forbidden, sentinel, "self_approval", "the requester of task %s cannot approve it", "tsk_1")
	wrapped := fmt.Errorf("deciding: %w", e)
	if !errors.Is(wrapped, sentinel) {
		t.Error("errors.Is does not find the sentinel through the refusal")
	}
	got, ok := As(wrapped)
	if !ok || got != e {
		t.Fatalf("As(%v) = %v, %v", wrapped, got, ok)
	}
	if e.Error() != "self_approval: the requester of task tsk_1 cannot approve it" {
		t.Errorf("Error() = %q", e.Error())
	}
	if HTTPStatus(wrapped) != http.StatusForbidden {
		t.Errorf("HTTPStatus(wrapped) = %d", HTTPStatus(wrapped))
	}
	if HTTPStatus(errors.New("disk on fire")) != http.StatusInternalServerError {
		t.Error("an error that is not a refusal is not a 500")
	}
	if _, ok := As(nil); ok {
		t.Error("As(nil) found a refusal")
	}
	if e := New(Invalid, nil, "invalid_request", "no sentinel"); errors.Unwrap(e) != nil {
		t.Errorf("Unwrap without a sentinel = %v", errors.Unwrap(e))
	}
}
