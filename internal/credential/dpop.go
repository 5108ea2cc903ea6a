package credential

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// DPoP proof limits (RFC 9449).
const (
	// DPoPProofType is the typ a DPoP proof must carry.
	DPoPProofType = "dpop+jwt"
	// DPoPWindow is how far a proof's iat may be from now, either way. A
	// proof's jti is remembered for this long after its iat.
	DPoPWindow = 60 * time.Second
	// MaxDPoPProofBytes bounds a proof before any parsing.
	MaxDPoPProofBytes = 8 << 10
	// minRSABits is the smallest RSA key accepted in a proof.
	minRSABits = 2048
)

// dpopAlgs are the proof algorithms writ accepts: asymmetric only, so a
// proof can never be an HMAC keyed with something public.
var dpopAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// DPoPAlgs is the value for the DPoP algs parameter of WWW-Authenticate and
// for dpop_signing_alg_values_supported in metadata.
const DPoPAlgs = "ES256 EdDSA RS256 PS256"

// privateJWKMembers are JWK members that only private or symmetric keys have.
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

type dpopHeader struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

type dpopClaims struct {
	JTI string          `json:"jti"`
	HTM string          `json:"htm"`
	HTU string          `json:"htu"`
	IAT json.RawMessage `json:"iat"`
	ATH *string         `json:"ath"`
}

// DPoPProof returns the request's DPoP header: "" when absent, an error when
// it appears more than once (RFC 9449 §4.3 allows exactly one).
func DPoPProof(h http.Header) (string, error) {
	v := h.Values("DPoP")
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", dpopError("more than one DPoP header")
}

// VerifyDPoP checks an RFC 9449 DPoP proof for a request with HTTP method
// method to URI htu (the full request URI as the client addressed it; query
// and fragment are ignored) and returns the RFC 7638 thumbprint of the
// proof's key. accessToken is the access token sent with the request, or ""
// at the token endpoint; when set, the proof must carry its hash (ath), and
// when empty it must not.
//
// The proof must be a compact JWS with typ dpop+jwt, alg ES256, EdDSA, RS256
// or PS256 (RSA keys of at least 2048 bits), a public jwk header that
// verifies the signature, jti, htm equal to method, htu equal to htu after
// normalising scheme and host case and default ports, and iat within
// DPoPWindow of now. Its jti is then recorded in replay and a proof seen
// before is refused. Every refusal wraps ErrInvalidDPoPProof.
//
// Call it after Verify has accepted the access token, so that only holders of
// a valid token can fill the replay cache, then pass the thumbprint to
// CheckBinding.
func VerifyDPoP(proof, method, htu, accessToken string, now time.Time, replay *ReplayCache) (jkt string, err error) {
	switch {
	case replay == nil:
		return "", dpopError("no replay cache configured")
	case proof == "":
		return "", dpopError("no DPoP proof")
	case len(proof) > MaxDPoPProofBytes:
		return "", dpopError("DPoP proof is %d bytes; the limit is %d", len(proof), MaxDPoPProofBytes)
	case strings.Count(proof, ".") != 2:
		return "", dpopError("DPoP proof is not a compact JWS")
	}
	key, e := checkDPoPHeader(proof)
	if e != nil {
		return "", e
	}
	jws, err := jose.ParseSigned(proof, dpopAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", dpopError("DPoP proof is not a valid JWS")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", dpopError("DPoP proof signature does not verify with its jwk")
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", dpopError("DPoP proof claims are malformed")
	}
	iat, e := c.check(method, htu, accessToken, now)
	if e != nil {
		return "", e
	}
	if jkt, err = thumbprint(key); err != nil {
		return "", dpopError("DPoP proof key has no thumbprint")
	}
	if e := replay.record(jkt, c.JTI, iat.Add(DPoPWindow), now); e != nil {
		return "", e
	}
	return jkt, nil
}

// checkDPoPHeader reads the unverified header and returns the embedded key
// once typ, alg and jwk are acceptable.
func checkDPoPHeader(proof string) (*jose.JSONWebKey, *refusal.Error) {
	h, _, _ := strings.Cut(proof, ".")
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, dpopError("DPoP proof header is not base64url")
	}
	var hdr dpopHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, dpopError("DPoP proof header is not a JSON object")
	}
	switch {
	case !strings.EqualFold(hdr.Typ, DPoPProofType):
		return nil, dpopError("DPoP proof typ '%s' is not %s", bearer.Claim(hdr.Typ), DPoPProofType)
	case !dpopAlgAllowed(hdr.Alg):
		return nil, dpopError("DPoP proof alg '%s' is not allowed (want one of %s)", bearer.Claim(hdr.Alg), DPoPAlgs)
	case hdr.Crit != nil || hdr.B64 != nil:
		return nil, dpopError("DPoP proof uses crit or b64, which writ does not support")
	case len(hdr.JWK) == 0:
		return nil, dpopError("DPoP proof has no jwk header")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(hdr.JWK, &members); err != nil {
		return nil, dpopError("DPoP proof jwk is not a JSON object")
	}
	for _, m := range privateJWKMembers {
		if _, ok := members[m]; ok {
			return nil, dpopError("DPoP proof jwk contains private key material ('%s'); send only the public key", m)
		}
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(hdr.JWK); err != nil || !key.Valid() || !key.IsPublic() {
		return nil, dpopError("DPoP proof jwk is not a valid public key")
	}
	if k, ok := key.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, dpopError("DPoP proof RSA key has %d bits; at least %d required", k.N.BitLen(), minRSABits)
	}
	return &key, nil
}

func dpopAlgAllowed(alg string) bool {
	for _, a := range dpopAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// check validates the proof's claims against the request and returns iat.
func (c *dpopClaims) check(method, htu, accessToken string, now time.Time) (time.Time, *refusal.Error) {
	switch {
	case c.JTI == "" || len(c.JTI) > 256:
		return time.Time{}, dpopError("DPoP proof jti is missing or longer than 256 bytes")
	case c.HTM != method:
		return time.Time{}, dpopError("DPoP proof htm '%s' does not match the request method %s", bearer.Claim(c.HTM), bearer.Claim(method))
	}
	got, ok1 := normalizeHTU(c.HTU)
	want, ok2 := normalizeHTU(htu)
	if !ok1 || !ok2 || got != want {
		return time.Time{}, dpopError("DPoP proof htu '%s' does not match the request URI", bearer.Claim(c.HTU))
	}
	// A JSON number, not a string holding one.
	secs, err := strconv.ParseFloat(string(c.IAT), 64)
	if len(c.IAT) == 0 || c.IAT[0] < '0' || c.IAT[0] > '9' || err != nil || secs <= 0 || secs > 1e11 {
		return time.Time{}, dpopError("DPoP proof iat is missing or not a NumericDate")
	}
	iat := time.Unix(int64(secs), 0)
	if d := now.Sub(iat); d > DPoPWindow || d < -DPoPWindow {
		return time.Time{}, dpopError("DPoP proof iat is more than %v from the server's time", DPoPWindow)
	}
	switch {
	case accessToken == "" && c.ATH != nil:
		return time.Time{}, dpopError("DPoP proof has ath but no access token was presented")
	case accessToken != "" && c.ATH == nil:
		return time.Time{}, dpopError("DPoP proof lacks ath, the hash of the access token")
	case accessToken != "" && subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(ATH(accessToken))) != 1:
		return time.Time{}, dpopError("DPoP proof ath does not match the access token")
	}
	return iat, nil
}

// ATH is the ath claim for accessToken: base64url(SHA-256(token)), unpadded.
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// normalizeHTU reduces an absolute http(s) URI to scheme://host[:port]/path
// with scheme and host lower-cased, default ports dropped, an empty path as
// "/", and query and fragment removed (RFC 9449 §4.3, RFC 3986 §6.2.2-3).
func normalizeHTU(s string) (string, bool) {
	if s == "" || len(s) > 4096 {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if host == "" {
		return "", false
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}
