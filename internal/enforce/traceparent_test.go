package enforce

import (
	"strings"
	"testing"
)

func TestTraceID(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""}, // all-zero trace-id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""}, // all-zero parent-id
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""}, // version ff
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""}, // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", ""},
		{"", ""},
	} {
		if got := TraceID(tt.in); got != tt.want {
			t.Errorf("TraceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzTraceID: only a well-formed W3C traceparent yields a trace ID, of
// 32 lower-case hex digits, not all zero, taken from the header.
func FuzzTraceID(f *testing.F) {
	for _, s := range []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"", "00-", strings.Repeat("-", 55)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id := TraceID(s)
		if id == "" {
			return
		}
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id, "0") == "" || !strings.Contains(s, id) {
			t.Errorf("TraceID(%q) = %q", s, id)
		}
	})
}
