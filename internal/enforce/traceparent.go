package enforce

import "strings"

// TraceID returns the trace-id of a valid W3C traceparent header
// ("00-<32 hex>-<16 hex>-<2 hex>", Trace Context §3.2), or "".
func TraceID(traceparent string) string {
	v := strings.TrimSpace(traceparent)
	if len(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return ""
	}
	if !lowerHex(v[:2]) || v[:2] == "ff" || !lowerHex(v[36:52]) || !lowerHex(v[53:]) {
		return ""
	}
	id := v[3:35]
	if !lowerHex(id) || strings.Trim(id, "0") == "" || strings.Trim(v[36:52], "0") == "" {
		return ""
	}
	return id
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
