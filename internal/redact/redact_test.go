package redact_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/redact"
)

func TestRedactPaths(t *testing.T) {
	tests := []struct {
		name      string
		root, doc string
		extra     []string
		want      string
		wantPaths []string
	}{
		{name: "nothing to redact", root: "arguments", doc: `{"id": 17, "note": "hello"}`,
			want: `{"id":17,"note":"hello"}`},
		{name: "top-level obligation", root: "arguments", doc: `{"id": 17, "pin": "1234"}`, extra: []string{"arguments.pin"},
			want: `{"id":17,"pin":"[redacted]"}`, wantPaths: []string{"arguments.pin"}},
		{name: "nested obligation", root: "arguments", doc: `{"user": {"pin": 1, "name": "a"}}`, extra: []string{"arguments.user.pin"},
			want: `{"user":{"name":"a","pin":"[redacted]"}}`, wantPaths: []string{"arguments.user.pin"}},
		{name: "path case-insensitive", root: "arguments", doc: `{"User": {"PIN": 1}}`, extra: []string{"arguments.user.pin"},
			want: `{"User":{"PIN":"[redacted]"}}`, wantPaths: []string{"arguments.User.PIN"}},
		{name: "other root ignored", root: "output", doc: `{"pin": 1}`, extra: []string{"arguments.pin"},
			want: `{"pin":1}`},
		{name: "index", root: "arguments", doc: `{"list": [{"pin": 1}, {"pin": 2}]}`, extra: []string{"arguments.list[0].pin"},
			want: `{"list":[{"pin":"[redacted]"},{"pin":2}]}`, wantPaths: []string{"arguments.list[0].pin"}},
		{name: "any index", root: "arguments", doc: `{"list": [{"pin": 1}, {"pin": 2}, 3]}`, extra: []string{"arguments.list[*].pin"},
			want: `{"list":[{"pin":"[redacted]"},{"pin":"[redacted]"},3]}`, wantPaths: []string{"arguments.list[0].pin", "arguments.list[1].pin"}},
		{name: "whole element", root: "arguments", doc: `{"m": [[1, 2], [3, 4]]}`, extra: []string{"arguments.m[1][0]"},
			want: `{"m":[[1,2],["[redacted]",4]]}`, wantPaths: []string{"arguments.m[1][0]"}},
		{name: "star one level", root: "arguments", doc: `{"a": {"pin": 1}, "b": [{"pin": 2}], "pin": 3, "c": {"d": {"pin": 4}}}`, extra: []string{"arguments.*.pin"},
			want: `{"a":{"pin":"[redacted]"},"b":[{"pin":2}],"c":{"d":{"pin":4}},"pin":3}`, wantPaths: []string{"arguments.a.pin"}},
		{name: "star matches an element", root: "arguments", doc: `{"b": [{"pin": 2}]}`, extra: []string{"arguments.b.*.pin"},
			want: `{"b":[{"pin":"[redacted]"}]}`, wantPaths: []string{"arguments.b[0].pin"}},
		{name: "any depth", root: "arguments", doc: `{"pin": 0, "a": {"pin": 1}, "b": [{"c": {"pin": 2}}]}`, extra: []string{"arguments.**.pin"},
			want:      `{"a":{"pin":"[redacted]"},"b":[{"c":{"pin":"[redacted]"}}],"pin":"[redacted]"}`,
			wantPaths: []string{"arguments.a.pin", "arguments.b[0].c.pin", "arguments.pin"}},
		{name: "any root", root: "output", doc: `{"x": {"ssn": "1"}}`, extra: []string{"**.ssn"},
			want: `{"x":{"ssn":"[redacted]"}}`, wantPaths: []string{"output.x.ssn"}},
		{name: "glob", root: "arguments", doc: `{"card_pin": 1, "PIN_hint": 2, "pin": 3}`, extra: []string{"arguments.*_pin"},
			want: `{"PIN_hint":2,"card_pin":"[redacted]","pin":3}`, wantPaths: []string{"arguments.card_pin"}},
		{name: "quoted name", root: "arguments", doc: `{"a.b": 1, "a": {"b": 2}}`, extra: []string{`arguments["a.b"]`},
			want: `{"a":{"b":2},"a.b":"[redacted]"}`, wantPaths: []string{`arguments["a.b"]`}},
		{name: "object value goes whole", root: "arguments", doc: `{"card": {"number": "4111", "cvc": 1}}`, extra: []string{"arguments.card"},
			want: `{"card":"[redacted]"}`, wantPaths: []string{"arguments.card"}},
		{name: "whole document keeps its members", root: "arguments", doc: `{"a": 1, "b": {"c": 2}}`, extra: []string{"arguments"},
			want: `{"a":"[redacted]","b":"[redacted]"}`, wantPaths: []string{"arguments"}},
		{name: "whole scalar document", root: "output", doc: `"text"`, extra: []string{"output.**"},
			want: `"[redacted]"`, wantPaths: []string{"output"}},
		{name: "bad pattern fails closed", root: "arguments", doc: `{"a": 1}`, extra: []string{"arguments.[x"},
			want: `{"a":"[redacted]"}`, wantPaths: []string{"arguments"}},
		{name: "absent path", root: "arguments", doc: `{"a": 1}`, extra: []string{"arguments.b", "arguments.a.b", "arguments.list[3]"},
			want: `{"a":1}`},
		{name: "big numbers kept as written", root: "arguments", doc: `{"n": 1e2, "m": 12.50}`,
			want: `{"m":12.5,"n":100}`},
		// The defaults apply without any pattern.
		{name: "issue fixture", root: "arguments",
			doc:       `{"nested":{"password":"hunter2"},"api_key":"k-123","list":[{"token":"t-1"}],"Password":"P","note":"ok"}`,
			want:      `{"Password":"[redacted]","api_key":"[redacted]","list":[{"token":"[redacted]"}],"nested":{"password":"[redacted]"},"note":"ok"}`,
			wantPaths: []string{"arguments.Password", "arguments.api_key", "arguments.list[0].token", "arguments.nested.password"}},
		{name: "default key, any value type", root: "output", doc: `{"credentials": {"user": "u", "pass": "p"}, "pin": 1, "token": 42}`,
			want: `{"credentials":"[redacted]","pin":1,"token":"[redacted]"}`, wantPaths: []string{"output.credentials", "output.token"}},
		{name: "credential inside a member name", root: "output", doc: `{"ghp_` + strings.Repeat("a", 36) + `": 1}`,
			want: `{"[redacted]":1}`, wantPaths: []string{`output["[redacted]"]`}},
		{name: "odd names printed quoted", root: "arguments", doc: `{"a\"b": {"password": 1}, "": {"token": 2}}`,
			want: `{"":{"token":"[redacted]"},"a\"b":{"password":"[redacted]"}}`, wantPaths: []string{`arguments[""].token`, `arguments["a\"b"].password`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, paths, err := redact.Default().Redact(tt.root, []byte(tt.doc), tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("document (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultKeys(t *testing.T) {
	secret := []string{
		"password", "Password", "PASSWORD", "passwd", "pwd", "passphrase", "db_password", "userPassword", "password_confirmation",
		"secret", "client_secret", "clientSecret", "webhook-secret", "token", "access_token", "refresh_token", "id_token",
		"githubToken", "X-Auth-Token", "session_token", "api_key", "apiKey", "API-KEY", "apikey", "x-api-key", "X_API_KEY",
		"authorization", "Authorization", "proxy-authorization", "cookie", "Set-Cookie", "session_cookie", "private_key",
		"privateKey", "access_key", "secret_access_key", "aws_secret_access_key", "AWS_ACCESS_KEY", "credentials", "credential",
		"connection_string", "session_id",
	}
	plain := []string{
		"id", "name", "note", "max_tokens", "token_type", "tokens", "key", "pin", "user", "passenger", "secretary",
		"pass", "cookies_enabled_count", "author", "api", "tokenizer", "access", "credit",
	}
	for _, k := range secret {
		got, paths, err := redact.Default().Redact("arguments", []byte(`{"`+k+`": "v"}`), nil)
		if err != nil || len(paths) != 1 || !strings.Contains(string(got), redact.Replacement) {
			t.Errorf("key %q: %s %v %v, want redacted", k, got, paths, err)
		}
	}
	for _, k := range plain {
		if _, paths, err := redact.Default().Redact("arguments", []byte(`{"`+k+`": "v"}`), nil); err != nil || paths != nil {
			t.Errorf("key %q: redacted %v %v, want kept", k, paths, err)
		}
	}
}

func TestConfig(t *testing.T) {
	e, err := redact.New(redact.Config{Keys: []string{"SSN", "card-number"}, Paths: []string{"output.**.iban"}})
	if err != nil {
		t.Fatal(err)
	}
	got, paths, err := e.Redact("arguments", []byte(`{"ssn": 1, "cardNumber": "4111", "iban": "x", "password": "p"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"cardNumber":"[redacted]","iban":"x","password":"[redacted]","ssn":"[redacted]"}`; string(got) != want {
		t.Errorf("arguments %s, want %s", got, want)
	}
	if want := []string{"arguments.cardNumber", "arguments.password", "arguments.ssn"}; !cmp.Equal(want, paths) {
		t.Errorf("paths %v, want %v", paths, want)
	}
	if got, _, _ := e.Redact("output", []byte(`{"a": [{"iban": "x"}]}`), nil); string(got) != `{"a":[{"iban":"[redacted]"}]}` {
		t.Errorf("output %s", got)
	}
	// The key set is the engine's: the default engine does not have them.
	if _, paths, _ := redact.Default().Redact("arguments", []byte(`{"ssn": 1}`), nil); paths != nil {
		t.Errorf("default engine redacted %v", paths)
	}
	for _, bad := range []redact.Config{{Keys: []string{"-_"}}, {Paths: []string{"arguments..x"}}} {
		if _, err := redact.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

func TestValidatePath(t *testing.T) {
	good := []string{"arguments", "arguments.password", "arguments.**.password", "arguments.items[*].token", "arguments.list[0].token",
		"*.token", "**", "arguments.*_pin", `arguments["a.b"]`, `arguments["x]y"].z`, "arguments.m[1][2]", `arguments.a["b"][0]`}
	bad := []string{"", ".", "arguments.", ".arguments", "arguments..x", "arguments.[x", "arguments.list[", "arguments.list[-1]",
		"arguments.list[01]", "arguments.a**b", `arguments["a`, `arguments["a"x`, "[0].x", `arguments.a"b`, "arguments]", strings.Repeat("a", 2000)}
	for _, p := range good {
		if err := redact.ValidatePath(p); err != nil {
			t.Errorf("ValidatePath(%q): %v", p, err)
		}
	}
	for _, p := range bad {
		if err := redact.ValidatePath(p); err == nil {
			t.Errorf("ValidatePath(%q) accepted", p)
		}
	}
}

func TestRedactErrors(t *testing.T) {
	for _, doc := range []string{`{`, `{"a": 1} 2`, `nope`, strings.Repeat("[", 1001) + strings.Repeat("]", 1001), `{"a": 1e999}`} {
		if got, _, err := redact.Default().Redact("arguments", []byte(doc), nil); err == nil {
			t.Errorf("Redact(%.40q) = %s, want an error", doc, got)
		}
	}
	if got, paths, err := redact.Default().Redact("arguments", []byte("  "), nil); got != nil || paths != nil || err != nil {
		t.Errorf("empty: %s %v %v", got, paths, err)
	}
}

// Past MaxRecorded paths the list says how many more there were.
func TestRecordedBound(t *testing.T) {
	doc := "[" + strings.TrimSuffix(strings.Repeat(`{"token":1},`, 150), ",") + "]"
	_, paths, err := redact.Default().Redact("output", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != redact.MaxRecorded+1 || paths[len(paths)-1] != "(50 more)" {
		t.Errorf("%d paths, last %q", len(paths), paths[len(paths)-1])
	}
}
