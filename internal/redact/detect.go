package redact

import (
	"encoding/base64"
	"slices"
	"strings"
)

// Detectors names what Redact recognizes inside any string, whatever its
// key. Each match is replaced by Replacement; the rest of the string stays.
var Detectors = []string{
	"AWS access key IDs (AKIA…, ASIA… and 16 more characters)",
	"AWS secret access keys (40 characters of base64 mixing cases and digits) in a document that holds an AWS access key ID",
	"GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
	"Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xapp-) and webhook URLs (hooks.slack.com/services/…)",
	"JWTs (eyJ… with two or more dot-separated base64url parts)",
	"PEM private key blocks (-----BEGIN … PRIVATE KEY----- to its END line)",
	"Google API keys (AIza and 35 more characters)",
	"Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, rk_test_) and webhook secrets (whsec_)",
	"Bearer and Basic credentials (\"Bearer <token>\", \"Basic <base64 of user:password>\")",
	"passwords in URLs (scheme://user:password@host)",
	"key=value, key: value and \"key\": \"value\" where the key is a secret's name",
}

type span struct{ from, to int }

// minShaped is the length of the shortest credential scan recognizes by
// its shape alone (a JWT: a 10-character header and a 2-character payload).
const minShaped = 14

// spans collects matches without allocating for the first few.
type spans struct {
	buf  [8]span
	list []span
}

func (sp *spans) add(from, to int) {
	if sp.list == nil {
		sp.list = sp.buf[:0]
	}
	if to > from {
		sp.list = append(sp.list, span{from, to})
	}
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
func isUpperDigit(c byte) bool { return 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
func isB64url(c byte) bool     { return isAlnum(c) || c == '-' || c == '_' }
func isB64(c byte) bool        { return isAlnum(c) || c == '+' || c == '/' }
func isAlnumUnder(c byte) bool { return isAlnum(c) || c == '_' }
func isAlnumDash(c byte) bool  { return isAlnum(c) || c == '-' }
func isToken68(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// run returns the end of the run of class characters starting at i.
func run(s string, i int, class func(byte) bool) int {
	for i < len(s) && class(s[i]) {
		i++
	}
	return i
}

// each calls f with the index of every occurrence of sub in s.
func each(s, sub string, f func(i int)) {
	for off := 0; ; {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			return
		}
		f(off + i)
		off += i + len(sub)
	}
}

// prefixed finds pre followed by at least min class characters, not
// preceded by one: a token with a well-known prefix.
func prefixed(s string, sp *spans, pre string, min int, class func(byte) bool) {
	each(s, pre, func(i int) {
		if i > 0 && (class(s[i-1]) || isAlnum(s[i-1])) {
			return
		}
		end := run(s, i+len(pre), class)
		if end-(i+len(pre)) >= min {
			sp.add(i, end)
		}
	})
}

// scan finds every credential in s. keys names the secret keys for the
// key=value form; aws enables the AWS secret key shape.
func scan(s string, sp *spans, keys keySet, aws bool) {
	// The shortest credential with a known shape has 14 characters; a
	// shorter string can only hold key=value, key: value, a URL's password
	// or basic credentials, each of which needs one of these.
	if len(s) < minShaped && !strings.ContainsAny(s, ":= \t") {
		return
	}
	for _, pre := range [...]string{"AKIA", "ASIA"} {
		each(s, pre, func(i int) {
			end := run(s, i+len(pre), isUpperDigit)
			if (i == 0 || !isAlnum(s[i-1])) && end-i == 20 && (end == len(s) || !isAlnum(s[end])) {
				sp.add(i, end)
			}
		})
	}
	if aws {
		awsSecrets(s, sp)
	}
	for _, pre := range [...]string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"} {
		prefixed(s, sp, pre, 36, isAlnum)
	}
	prefixed(s, sp, "github_pat_", 22, isAlnumUnder)
	for _, pre := range [...]string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-"} {
		prefixed(s, sp, pre, 10, isAlnumDash)
	}
	slackWebhooks(s, sp)
	jwts(s, sp)
	pemKeys(s, sp)
	prefixed(s, sp, "AIza", 35, isB64url)
	for _, pre := range [...]string{"sk_live_", "rk_live_", "sk_test_", "rk_test_"} {
		prefixed(s, sp, pre, 16, isAlnum)
	}
	prefixed(s, sp, "whsec_", 24, isAlnum)
	authSchemes(s, sp)
	urlPasswords(s, sp)
	keyValues(s, sp, keys)
}

// awsSecrets finds runs of exactly 40 base64 characters holding upper and
// lower case letters and digits (a hex digest has no upper case).
func awsSecrets(s string, sp *spans) {
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		end := run(s, i, isB64)
		if end-i == 40 && (end == len(s) || s[end] != '=') {
			var up, low, dig bool
			for _, c := range []byte(s[i:end]) {
				up, low, dig = up || 'A' <= c && c <= 'Z', low || 'a' <= c && c <= 'z', dig || '0' <= c && c <= '9'
			}
			if up && low && dig {
				sp.add(i, end)
			}
		}
		i = end
	}
}

// urlChar is a character that can be part of a URL written in text.
func urlChar(c byte) bool {
	return c > ' ' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`' && c != 0x7f
}

func slackWebhooks(s string, sp *spans) {
	each(s, "hooks.slack.com/", func(i int) {
		rest := s[i+len("hooks.slack.com/"):]
		if !strings.HasPrefix(rest, "services/") && !strings.HasPrefix(rest, "workflows/") && !strings.HasPrefix(rest, "triggers/") {
			return
		}
		from := i
		for _, scheme := range [...]string{"https://", "http://"} {
			if strings.HasSuffix(s[:i], scheme) {
				from = i - len(scheme)
			}
		}
		sp.add(from, run(s, i, urlChar))
	})
}

func jwts(s string, sp *spans) {
	each(s, "eyJ", func(i int) {
		if i > 0 && (isB64url(s[i-1]) || s[i-1] == '.') {
			return
		}
		h := run(s, i, isB64url)
		if h-i < 10 || h >= len(s) || s[h] != '.' {
			return
		}
		p := run(s, h+1, isB64url)
		if p-(h+1) < 2 || p >= len(s) || s[p] != '.' {
			return
		}
		end := run(s, p+1, isB64url)
		// JWE compact serializations have five parts.
		for end < len(s) && s[end] == '.' {
			end = run(s, end+1, isB64url)
		}
		sp.add(i, end)
	})
}

func pemKeys(s string, sp *spans) {
	each(s, "-----BEGIN ", func(i int) {
		head := s[i+len("-----BEGIN "):]
		close := strings.Index(head, "-----")
		if close < 0 || strings.ContainsAny(head[:close], "\r\n") || !strings.Contains(head[:close], "PRIVATE KEY") {
			return
		}
		end := len(s)
		if e := strings.Index(head[close:], "-----END "); e >= 0 {
			tail := head[close+e+len("-----END "):]
			if c := strings.Index(tail, "-----"); c >= 0 {
				end = len(s) - len(tail) + c + len("-----")
			}
		}
		sp.add(i, end)
	})
}

// indexFold is strings.Index folding the ASCII case of s; sub is lower case.
func indexFold(s, sub string, from int) int {
	for i := from; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && lowerByte(s[i+j]) == sub[j] {
			j++
		}
		if j == len(sub) {
			return i
		}
	}
	return -1
}

// authSchemes finds "Bearer <token>" and "Basic <credentials>". A bearer
// token must look random (16 characters or more, of at least two kinds
// among upper case, lower case, digits and symbols), so that prose such as
// "bearer of bad news" stays; basic credentials must decode to user:password.
func authSchemes(s string, sp *spans) {
	for _, scheme := range [...]string{"bearer", "basic"} {
		for i := indexFold(s, scheme, 0); i >= 0; i = indexFold(s, scheme, i+len(scheme)) {
			if i > 0 && isAlnum(s[i-1]) {
				continue
			}
			t := i + len(scheme)
			if t >= len(s) || (s[t] != ' ' && s[t] != '\t') {
				continue
			}
			for t < len(s) && (s[t] == ' ' || s[t] == '\t') {
				t++
			}
			end := run(s, t, isToken68)
			for end < len(s) && s[end] == '=' {
				end++
			}
			tok := s[t:end]
			if scheme == "bearer" && looksRandom(tok) || scheme == "basic" && basicPair(tok) {
				sp.add(t, end)
			}
		}
	}
}

func looksRandom(tok string) bool {
	if len(tok) < 16 {
		return false
	}
	var up, low, dig, sym int
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case 'A' <= c && c <= 'Z':
			up = 1
		case 'a' <= c && c <= 'z':
			low = 1
		case '0' <= c && c <= '9':
			dig = 1
		default:
			sym = 1
		}
	}
	return up+low+dig+sym >= 2
}

func basicPair(tok string) bool {
	if len(tok) < 4 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(tok, "=")); err != nil {
			return false
		}
	}
	colon := false
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon
}

// urlPasswords finds the password of scheme://user:password@host.
func urlPasswords(s string, sp *spans) {
	each(s, "://", func(i int) {
		a := i + 3
		end := a
		for end < len(s) && urlChar(s[end]) && s[end] != '/' && s[end] != '?' && s[end] != '#' {
			end++
		}
		at := strings.LastIndexByte(s[a:end], '@')
		if at < 0 {
			return
		}
		if colon := strings.IndexByte(s[a:a+at], ':'); colon >= 0 {
			sp.add(a+colon+1, a+at)
		}
	})
}

func isIdent(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// valueStop ends an unquoted value in key=value text.
func valueStop(c byte) bool {
	return isSpace(c) || c == '&' || c == ';' || c == ',' || c == ')' || c == '}' || c == ']' || c == '"' || c == '\'' || c == '<' || c == '>'
}

// keyValues finds the value of key=value, key: value and "key": "value"
// when key is a secret's name.
func keyValues(s string, sp *spans, keys keySet) {
	for off := 0; off < len(s); {
		rel := strings.IndexAny(s[off:], ":=")
		if rel < 0 {
			return
		}
		i := off + rel
		off = i + 1
		if s[i] == ':' && strings.HasPrefix(s[i+1:], "//") || s[i] == '=' && strings.HasPrefix(s[i+1:], "=") {
			continue
		}
		k := i - 1
		for k >= 0 && (s[k] == ' ' || s[k] == '\t') {
			k--
		}
		if k >= 0 && (s[k] == '"' || s[k] == '\'') {
			k--
			if k >= 0 && s[k] == '\\' { // JSON inside a string
				k--
			}
		}
		end := k + 1
		for k >= 0 && isIdent(s[k]) && end-k <= 64 {
			k--
		}
		if end-(k+1) < 2 || !keys.has(s[k+1:end]) {
			continue
		}
		v := i + 1
		for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		if v >= len(s) || strings.HasPrefix(s[v:], Replacement) {
			continue
		}
		if s[v] == '\\' && v+1 < len(s) && (s[v+1] == '"' || s[v+1] == '\'') {
			// JSON inside a string: the value ends at the next escaped quote.
			q := s[v : v+2]
			e := strings.Index(s[v+2:], q)
			if e < 0 {
				e = len(s) - (v + 2)
			}
			sp.add(v+2, v+2+e)
			off = max(off, v+2+e)
			continue
		}
		if q := s[v]; q == '"' || q == '\'' {
			e := v + 1
			for e < len(s) && s[e] != q {
				if s[e] == '\\' {
					e++
				}
				e++
			}
			sp.add(v+1, min(e, len(s)))
			off = max(off, min(e+1, len(s)))
			continue
		}
		e := v
		for e < len(s) && !valueStop(s[e]) {
			e++
		}
		// "Authorization: Bearer abc": the scheme and its credential.
		if e < len(s) && (s[e] == ' ' || s[e] == '\t') && authScheme(s[v:e]) {
			w := e
			for w < len(s) && (s[w] == ' ' || s[w] == '\t') {
				w++
			}
			for w < len(s) && !valueStop(s[w]) {
				w++
			}
			e = w
		}
		sp.add(v, e)
		off = max(off, e)
	}
}

func authScheme(w string) bool {
	for _, s := range [...]string{"bearer", "basic", "token", "digest", "negotiate", "dpop"} {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// replace returns s with every span replaced by Replacement (overlapping
// spans merged), and whether anything was.
func replace(s string, sp *spans) (string, bool) {
	if len(sp.list) == 0 {
		return s, false
	}
	list := sp.list
	slices.SortFunc(list, func(a, b span) int { return a.from - b.from })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for i := 0; i < len(list); {
		from, to := list[i].from, list[i].to
		for i++; i < len(list) && list[i].from <= to; i++ {
			to = max(to, list[i].to)
		}
		b.WriteString(s[at:from])
		b.WriteString(Replacement)
		at = to
	}
	b.WriteString(s[at:])
	return b.String(), true
}
