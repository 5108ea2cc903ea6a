package httpjson_test

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
)

// FuzzUnmarshal holds the strict decoder to encoding/json: it never
// panics; what it accepts, encoding/json with DisallowUnknownFields accepts
// too and decodes to the same value, with no duplicate name at any depth
// and every member name exact; and what it refuses that encoding/json
// accepts is refused for one of those reasons, as a reference check
// confirms.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"agent":"spiffe://example.org/a","intent":"x","scope":{"tools":["t.*"],"resources":["kb://a/*"],"operations":["read"],"data_class":"internal","environments":["prod"]},"ttl":"15m","parent":null}`,
		`{"agent":"a","AGENT":"b"}`,
		`{"agent":"a","agent":"b"}`,
		`{"scope":{"tools":[],"tools":[]}}`,
		`{"scope":{"limits":{"calls":1}}}`,
		`{"parent":"p","Parent":"q"}`,
		`{"intent":"\ud83d\ude00 \ud800"}`,
		"{\"intent\":\"\xff\"}",
		`{"ttl":"1m"} x`,
		`null`, `[]`, `{}`, ``, `{"scope":null,"parent":"x"}`,
		`{"scope":{"tools":[1]}}`,
	} {
		f.Add(s, false)
	}
	for _, s := range []string{
		`{"tool":"t","arguments":{"a":1,"a":2}}`,
		`{"tool":"t","arguments":[{"x":{"y":1,"y":2}}]}`,
		`{"tool":"t","arguments":{"a":1,"\u0061":2}}`,
		`{"tool":"t","args":{}}`,
		`{"tool":"t","arguments":{"n":12345678901234567891,"f":1e400}}`,
		`{"tool":"t","arguments":"x","data_class":"internal"}`,
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, authorize bool) {
		var strict, lax any = &api.OpenTask{}, &api.OpenTask{}
		if authorize {
			strict, lax = &api.Authorize{}, &api.Authorize{}
		}
		err := httpjson.Unmarshal([]byte(body), strict)
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		laxErr := dec.Decode(lax)
		if laxErr == nil {
			if _, e := dec.Token(); !errors.Is(e, io.EOF) {
				laxErr = errors.New("trailing data")
			}
		}
		dup := hasDuplicate(body)
		inexact := !exactNames(body, authorize)
		if err == nil {
			switch {
			case laxErr != nil:
				t.Fatalf("accepted what encoding/json refuses (%v): %q", laxErr, body)
			case dup:
				t.Fatalf("accepted a duplicate name: %q", body)
			case inexact:
				t.Fatalf("accepted an inexact member name: %q", body)
			case !utf8.ValidString(body):
				t.Fatalf("accepted invalid UTF-8: %q", body)
			}
			if d := cmp.Diff(lax, strict); d != "" {
				t.Fatalf("decodes differently from encoding/json (-json +strict):\n%s\n%q", d, body)
			}
			return
		}
		var be *httpjson.BodyError
		if !errors.As(err, &be) || be.Detail == "" {
			t.Fatalf("error %v (%T) is not a *BodyError", err, err)
		}
		if laxErr != nil {
			return
		}
		// encoding/json accepts it: the refusal must be one it lacks.
		switch {
		case dup && strings.HasPrefix(be.Detail, "duplicate key"):
		case inexact && strings.HasPrefix(be.Detail, "unknown field"):
		case !utf8.ValidString(body) && strings.Contains(be.Detail, "UTF-8"):
		case strings.Contains(strings.ToLower(body), `\ud`) && strings.Contains(be.Detail, "surrogate"):
		case strings.Contains(be.Detail, "must be a JSON object") && !startsObject(body):
		default:
			t.Fatalf("refused (%v) what encoding/json accepts, for no reference reason: %q", err, body)
		}
	})
}

func startsObject(body string) bool {
	s := strings.TrimLeft(body, " \t\r\n")
	return s != "" && s[0] == '{'
}

// hasDuplicate is the reference duplicate check: encoding/json's tokens,
// names compared once unescaped.
func hasDuplicate(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	var walk func() (bool, error)
	walk = func() (bool, error) {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false, err
				}
				name := k.(string)
				if seen[name] {
					return true, nil
				}
				seen[name] = true
				if d, err := walk(); d || err != nil {
					return d, err
				}
			}
			_, err = dec.Token()
			return false, err
		case json.Delim('['):
			for dec.More() {
				if d, err := walk(); d || err != nil {
					return d, err
				}
			}
			_, err = dec.Token()
			return false, err
		}
		return false, nil
	}
	d, _ := walk()
	return d
}

// exactNames is the reference name check: every member of the request
// object (and of its scope) is spelled exactly as a json tag.
func exactNames(body string, authorize bool) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &top) != nil {
		return true // not an object: not a question of names
	}
	names := []string{"agent", "intent", "scope", "ttl", "parent"}
	if authorize {
		names = []string{"tool", "operation", "resource", "arguments", "data_class"}
	}
	for k := range top {
		if !slices.Contains(names, k) {
			return false
		}
	}
	var sc map[string]json.RawMessage
	if authorize || json.Unmarshal(top["scope"], &sc) != nil {
		return true
	}
	for k := range sc {
		if !slices.Contains([]string{"tools", "resources", "operations", "data_class", "environments", "limits"}, k) {
			return false
		}
	}
	var lim map[string]json.RawMessage
	if json.Unmarshal(sc["limits"], &lim) != nil {
		return true
	}
	for k := range lim {
		if !slices.Contains([]string{"calls", "per_tool", "per_minute"}, k) {
			return false
		}
	}
	return true
}
