package gateway_test

import (
	"strings"
	"testing"
)

// FuzzMCPRequest posts arbitrary bodies to a live gateway with a valid
// task token: whatever arrives, the answer is never a server error, and
// the agent's token never reaches the upstream.
func FuzzMCPRequest(f *testing.F) {
	up := startGoUpstream(f)
	w := upWrit(f, up.url)
	_, token := w.TaskToken(f, upScope)
	for _, s := range []string{initialize,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hidden-tool"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///private/keys.txt"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"greet","arguments":{"who":1}}}`,
		`[{"jsonrpc":"2.0","id":6,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":"x"}}`,
		`{"jsonrpc":"2.0","id":null}`, `{}`, `null`, `"`, ``} {
		f.Add(s, "2025-11-25")
		f.Add(s, "2026-07-28")
	}
	f.Fuzz(func(t *testing.T, body, version string) {
		h := map[string]string{}
		if version != "" && printable(version) {
			h["Mcp-Protocol-Version"] = version
		}
		a := rawPost(t, w.URL+"/mcp/up", token, body, h)
		if a.status >= 500 {
			t.Errorf("body %q, version %q: %d %s", body, version, a.status, a.body)
		}
		for _, hd := range up.seen() {
			if strings.Contains(hd.Get("Authorization"), token) {
				t.Fatal("the agent's token reached the upstream")
			}
		}
	})
}

// printable reports whether s may be sent as a header value.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
