package redact

// DefaultKeys are the member names whose values are always replaced, in
// normalized form (see NormalizeKey).
var DefaultKeys = []string{
	"password", "passwd", "pwd", "passphrase",
	"secret", "clientsecret", "apisecret", "secretkey",
	"token", "accesstoken", "refreshtoken", "idtoken", "authtoken", "sessiontoken", "bearertoken",
	"apikey", "xapikey", "apitoken",
	"authorization", "proxyauthorization",
	"cookie", "setcookie", "sessionid",
	"privatekey", "accesskey", "secretaccesskey",
	"credentials", "credential",
	"connectionstring",
}

// DefaultSuffixes extend DefaultKeys: a normalized name ending with one of
// them matches too (db_password, githubToken, aws_secret_access_key).
var DefaultSuffixes = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey",
	"privatekey", "secretkey", "accesskey", "credentials", "cookie",
}

// defaultPrefixes: a normalized name starting with one of them matches
// too (password_confirmation, passwordNew).
var defaultPrefixes = []string{"password", "passwd"}

// maxKeyBytes bounds the names NormalizeKey looks at; a longer one is
// compared as it is cut.
const maxKeyBytes = 128

// NormalizeKey folds ASCII case and drops '-', '_', '.' and spaces, so
// apiKey, API-KEY, api_key and "api key" are all "apikey".
func NormalizeKey(k string) string {
	var buf [maxKeyBytes]byte
	return string(normalize(buf[:0], k))
}

// normalize appends the normalized form of k to dst (at most maxKeyBytes).
func normalize(dst []byte, k string) []byte {
	for i := 0; i < len(k) && len(dst) < maxKeyBytes; i++ {
		switch c := k[i]; c {
		case '-', '_', '.', ' ':
		default:
			dst = append(dst, lowerByte(c))
		}
	}
	return dst
}

// keySet is the set of member names an engine redacts wherever they are.
type keySet struct {
	exact map[string]bool
}

func newKeySet(extra []string) keySet {
	ks := keySet{exact: make(map[string]bool, len(DefaultKeys)+len(extra))}
	for _, k := range DefaultKeys {
		ks.exact[k] = true
	}
	for _, k := range extra {
		ks.exact[NormalizeKey(k)] = true
	}
	return ks
}

// has reports whether member name k is a secret's name. It does not
// allocate.
func (ks keySet) has(k string) bool {
	if len(k) > 2*maxKeyBytes {
		k = k[:2*maxKeyBytes]
	}
	var buf [maxKeyBytes]byte
	n := normalize(buf[:0], k)
	if ks.exact[string(n)] {
		return true
	}
	for _, suf := range DefaultSuffixes {
		if len(n) >= len(suf) && string(n[len(n)-len(suf):]) == suf {
			return true
		}
	}
	for _, pre := range defaultPrefixes {
		if len(n) >= len(pre) && string(n[:len(pre)]) == pre {
			return true
		}
	}
	return false
}
