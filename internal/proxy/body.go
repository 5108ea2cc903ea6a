package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/writhq/writ/internal/jcs"
)

// A query as decided: its pairs in the order sent, decoded. Policy and the
// ledger see them as a map of names to values; the upstream is sent their
// canonical encoding, so that both read the same pairs.
type query []pair

type pair struct{ k, v string }

// parseQuery decodes a raw query string. Anything that decoders disagree
// on is refused: a ';' (once a separator, now an error in Go, kept by
// others), a malformed %-escape, or a name or value that is not UTF-8
// once decoded. Empty pairs ("a=1&&b=2") are dropped.
func parseQuery(raw string) (query, error) {
	var q query
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		if strings.Contains(part, ";") {
			return nil, errors.New("the query holds a ';': separate pairs with '&' and encode a literal ';' as %3B")
		}
		k, v, _ := strings.Cut(part, "=")
		k, err := url.QueryUnescape(k)
		if err == nil {
			v, err = url.QueryUnescape(v)
		}
		if err != nil {
			return nil, errors.New("the query holds a malformed %-escape")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errors.New("the query decodes to bytes that are not UTF-8")
		}
		q = append(q, pair{k, v})
	}
	return q, nil
}

// values is the query as policy sees it: each name's values in order.
func (q query) values() map[string][]string {
	m := make(map[string][]string, len(q))
	for _, p := range q {
		m[p.k] = append(m[p.k], p.v)
	}
	return m
}

// encode is the canonical query string of q: every byte but the unreserved
// ones percent-encoded, spaces as %20 (never '+', which some servers read
// literally), pairs in the order sent.
func (q query) encode() string {
	var b strings.Builder
	for i, p := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(p.k))
		b.WriteByte('=')
		b.WriteString(escape(p.v))
	}
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// Body fields of the recorded arguments and output: "body" holds a JSON
// body as its value and a UTF-8 text body as a string; "body_base64" holds
// any other body as the standard base64 of its bytes.
const (
	fieldBody       = "body"
	fieldBodyBase64 = "body_base64"
)

// bodyField classifies a body by its content, whatever its Content-Type
// claims: JSON when it parses as JSON, else text when it is UTF-8, else
// bytes. A body that parses as JSON but is not I-JSON (duplicate names,
// invalid Unicode, numbers a double does not hold exactly) or starts with
// a byte order mark comes back as text or bytes with the reason in
// strictErr: the proxy refuses such a request, since the upstream could
// read other values than policy saw, and records such a response exactly.
func bodyField(b []byte) (key string, value any, strictErr error) {
	if json.Valid(b) {
		if strictErr = strictJSON(b); strictErr == nil {
			return fieldBody, json.RawMessage(b), nil
		}
	} else if rest, ok := bytes.CutPrefix(b, []byte("\xef\xbb\xbf")); ok && json.Valid(rest) {
		strictErr = errors.New("the JSON body starts with a byte order mark (RFC 8259 §8.1)")
	}
	if utf8.Valid(b) {
		return fieldBody, string(b), strictErr
	}
	return fieldBodyBase64, base64.StdEncoding.EncodeToString(b), strictErr
}

// strictJSON checks that a valid JSON text is I-JSON (RFC 7493) in the
// ways that let two parsers read different values from it: duplicate
// member names, invalid Unicode, and numbers that a double does not hold
// exactly.
func strictJSON(b []byte) error {
	if _, err := jcs.Canonicalize(b); err != nil {
		var je *jcs.Error
		if errors.As(err, &je) {
			return fmt.Errorf("the JSON body is not I-JSON: %s at offset %d", je.Err, je.Offset)
		}
		return errors.New("the JSON body is not I-JSON")
	}
	if path, found := jcs.InexactNumber(b); found {
		return &inexactError{path: "arguments.body" + path}
	}
	return nil
}

// inexactError is a JSON body holding a number that canonical form would
// change: the same refusal as for the decision API's arguments.
type inexactError struct{ path string }

func (e *inexactError) Error() string {
	return e.path + ": the number is not exactly a double (I-JSON, RFC 7493 §2.2: integers within ±(2^53−1), no more digits than a double keeps); send it as a string"
}
