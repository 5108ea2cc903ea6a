package credential

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/bearer"
)

// Limits and fixed parameters of writ access tokens.
const (
	// TokenType is the JOSE typ of a writ access token (RFC 9068).
	TokenType = "at+jwt"
	// MaxTokenBytes bounds a presented access token before any parsing.
	MaxTokenBytes = 8 << 10
	// MaxActorDepth bounds the delegation chain (the act nesting).
	MaxActorDepth = 16
	// ClockSkew is the leeway for exp, nbf and iat. Small, because writ
	// issued the token and checks it with the same clock.
	ClockSkew = 5 * time.Second
	// DefaultMaxTTL is IssuerOptions.MaxTTL when unset.
	DefaultMaxTTL = time.Hour
	// DefaultCacheSize is IssuerOptions.CacheSize when unset.
	DefaultCacheSize = 100_000
)

// IssuerOptions configure an Issuer. Only Issuer is required.
type IssuerOptions struct {
	// Issuer is the iss claim, e.g. "writ" or writ's public URL.
	Issuer string
	// KeyFile, when set, is the signing key to use (PKCS#8 PEM, mode 0600),
	// instead of KeyFile in the data directory; it is never created.
	KeyFile string
	// Audience is the aud claim tokens carry and Verify demands; default
	// "writ".
	Audience string
	// MaxTTL is the longest lifetime Issue grants and Verify accepts (a
	// token whose exp-iat exceeds it is refused even with a valid
	// signature); default DefaultMaxTTL. Revoked tasks are remembered for
	// this long.
	MaxTTL time.Duration
	// CacheSize bounds the verified-token cache; default DefaultCacheSize,
	// negative disables the cache.
	CacheSize int
	// Now is the clock for issuing and revocation bookkeeping; default
	// time.Now.
	Now func() time.Time
}

// Issuer mints and verifies writ access tokens with one Ed25519 key. It is
// safe for concurrent use.
type Issuer struct {
	iss, aud string
	maxTTL   time.Duration
	now      func() time.Time
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	kid      string
	signer   jose.Signer
	jwks     []byte
	cache    *tokenCache
	revoked  *Revocations
}

// NewIssuer loads the signing key from dataDir (creating dataDir/credential.key
// on first use) and returns an Issuer with an empty revocation set; the caller
// fills it with Revocations().Load before serving.
func NewIssuer(dataDir string, opts IssuerOptions) (*Issuer, error) {
	if opts.Issuer == "" {
		return nil, errors.New("credential issuer: Issuer (the iss claim) is required")
	}
	if opts.Audience == "" {
		opts.Audience = "writ"
	}
	if opts.MaxTTL == 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.MaxTTL < time.Second {
		return nil, fmt.Errorf("credential issuer: MaxTTL %v is shorter than a second", opts.MaxTTL)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var priv ed25519.PrivateKey
	var err error
	if opts.KeyFile != "" {
		priv, err = loadKeyFile(opts.KeyFile)
	} else {
		priv, err = loadOrCreateKey(dataDir)
	}
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	kid, err := thumbprint(&jose.JSONWebKey{Key: pub})
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType(TokenType).WithHeader("kid", kid))
	if err != nil {
		return nil, errors.New("credential issuer: cannot build the token signer")
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig",
	}}})
	if err != nil {
		return nil, errors.New("credential issuer: cannot encode the JWKS")
	}
	return &Issuer{
		iss: opts.Issuer, aud: opts.Audience, maxTTL: opts.MaxTTL, now: opts.Now,
		priv: priv, pub: pub, kid: kid, signer: signer, jwks: jwks,
		cache:   newTokenCache(opts.CacheSize),
		revoked: newRevocations(opts.MaxTTL+ClockSkew, opts.Now),
	}, nil
}

// KeyID is the kid of the signing key: its RFC 7638 thumbprint.
func (i *Issuer) KeyID() string { return i.kid }

// JWKS is the public key set to serve at /oauth2/jwks, so resource servers
// and auditors can check writ access tokens. The caller must not modify it.
func (i *Issuer) JWKS() []byte { return i.jwks }

// Revocations is the revocation set Verify consults on every call.
func (i *Issuer) Revocations() *Revocations { return i.revoked }

// Claims is what a new access token says.
type Claims struct {
	// Subject is the stable principal ID of the human the task acts for.
	Subject string
	// Actors is the delegation chain of agent IDs: Actors[0] is the agent
	// the token is issued to, Actors[1] the agent that delegated to it, and
	// so on to the agent that holds the root task. A child token's chain is
	// the child agent followed by the parent token's Actors.
	Actors []string
	// TaskID is the task the token is bound to (txn; scope "task:<id>").
	TaskID string
	// TTL is the token's lifetime, whole seconds, at most MaxTTL. The caller
	// caps it by policy and by the task's own remaining lifetime.
	TTL time.Duration
	// Cnf makes the token sender-constrained; zero for a bearer token.
	Cnf Cnf
	// Resource, when set, binds the token to one resource (RFC 8707): it
	// becomes the aud claim instead of the issuer's audience, and must be
	// an absolute http or https URI (IsResourceURI).
	Resource string
}

// Cnf is the confirmation claim (RFC 7800) of a sender-constrained token. At
// most one member is set.
type Cnf struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key (RFC 9449), see JKT.
	JKT string `json:"jkt,omitempty"`
	// X5T is the SHA-256 thumbprint of the client certificate (RFC 8705),
	// see X5T.
	X5T string `json:"x5t#S256,omitempty"`
}

// Bound reports whether the token is sender-constrained.
func (c Cnf) Bound() bool { return c.JKT != "" || c.X5T != "" }

// Binding names the binding as events and policy do: "dpop", "mtls" or
// "none".
func (c Cnf) Binding() string {
	switch {
	case c.JKT != "":
		return "dpop"
	case c.X5T != "":
		return "mtls"
	}
	return "none"
}

// actClaim is the RFC 8693 actor claim; Act nests the previous actor.
type actClaim struct {
	Sub string    `json:"sub"`
	Act *actClaim `json:"act,omitempty"`
}

// wireClaims is the payload of a writ access token, in issue order.
type wireClaims struct {
	Iss   string    `json:"iss"`
	Sub   string    `json:"sub"`
	Aud   string    `json:"aud"`
	Act   *actClaim `json:"act"`
	Txn   string    `json:"txn"`
	Scope string    `json:"scope"`
	JTI   string    `json:"jti"`
	Iat   int64     `json:"iat"`
	Nbf   int64     `json:"nbf"`
	Exp   int64     `json:"exp"`
	Cnf   *Cnf      `json:"cnf,omitempty"`
}

// Issue mints a signed access token for c and returns it with its jti (128
// random bits, base64url). iat and nbf are now (whole seconds); exp is
// iat+TTL. Issue refuses claims it could not later verify.
func (i *Issuer) Issue(c Claims) (token string, jti string, err error) {
	if err := i.checkClaims(c); err != nil {
		return "", "", err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", errors.New("issue: no randomness for the jti")
	}
	jti = base64.RawURLEncoding.EncodeToString(id[:])
	iat := i.now().Unix()
	w := wireClaims{
		Iss: i.iss, Sub: c.Subject, Aud: cmp.Or(c.Resource, i.aud), Act: actChain(c.Actors),
		Txn: c.TaskID, Scope: ScopePrefix + c.TaskID, JTI: jti,
		Iat: iat, Nbf: iat, Exp: iat + int64(c.TTL/time.Second),
	}
	if c.Cnf.Bound() {
		cnf := c.Cnf
		w.Cnf = &cnf
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", "", fmt.Errorf("issue: encoding claims: %w", err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", "", errors.New("issue: signing failed")
	}
	token, err = jws.CompactSerialize()
	if err != nil {
		return "", "", errors.New("issue: serializing failed")
	}
	if len(token) > MaxTokenBytes {
		return "", "", fmt.Errorf("issue: token would be %d bytes, over the %d-byte limit Verify enforces", len(token), MaxTokenBytes)
	}
	return token, jti, nil
}

func (i *Issuer) checkClaims(c Claims) error {
	switch {
	case c.Subject == "":
		return errors.New("issue: Subject (the requester) is required")
	case c.Resource != "" && (!IsResourceURI(c.Resource) || c.Resource == i.aud):
		return fmt.Errorf("issue: resource %q is not an absolute http or https URI", bearer.Claim(c.Resource))
	case !ValidTaskID(c.TaskID):
		return fmt.Errorf("issue: task id %q is not valid", bearer.Claim(c.TaskID))
	case len(c.Actors) == 0:
		return errors.New("issue: Actors needs at least the agent the token is for")
	case len(c.Actors) > MaxActorDepth:
		return fmt.Errorf("issue: delegation chain of %d agents exceeds %d", len(c.Actors), MaxActorDepth)
	case c.TTL < time.Second || c.TTL%time.Second != 0:
		return fmt.Errorf("issue: TTL %v must be a positive whole number of seconds", c.TTL)
	case c.TTL > i.maxTTL:
		return fmt.Errorf("issue: TTL %v exceeds the maximum %v", c.TTL, i.maxTTL)
	case c.Cnf.JKT != "" && c.Cnf.X5T != "":
		return errors.New("issue: a token is bound to a DPoP key or a certificate, not both")
	case c.Cnf.JKT != "" && !isThumbprint(c.Cnf.JKT):
		return errors.New("issue: Cnf.JKT is not a base64url SHA-256 thumbprint")
	case c.Cnf.X5T != "" && !isThumbprint(c.Cnf.X5T):
		return errors.New("issue: Cnf.X5T is not a base64url SHA-256 thumbprint")
	}
	for _, a := range c.Actors {
		if a == "" {
			return errors.New("issue: an agent ID in Actors is empty")
		}
	}
	return nil
}

// actChain nests actors outermost first: {"sub": a[0], "act": {"sub": a[1]}}.
func actChain(actors []string) *actClaim {
	var act *actClaim
	for k := len(actors) - 1; k >= 0; k-- {
		act = &actClaim{Sub: actors[k], Act: act}
	}
	return act
}

// isThumbprint reports whether s is 32 bytes in unpadded base64url.
func isThumbprint(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}
