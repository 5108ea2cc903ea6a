package identity

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/printable"
	"github.com/writhq/writ/internal/refusal"
)

const (
	// jwksMinRefetch is the least time between two JWKS fetches caused by an
	// unknown kid, so junk tokens cannot make writ hammer an issuer.
	jwksMinRefetch = 30 * time.Second
	// jwksMaxAge is how long a fetched JWKS is used before it is fetched again,
	// so keys an issuer retires stop being trusted.
	jwksMaxAge = time.Hour
)

// oidcIssuer verifies tokens of one configured OIDC issuer.
type oidcIssuer struct {
	issuer   string
	audience []string
	kind     Kind
	roles    RoleClaim
	keys     keyStore
}

// keyStore finds an issuer's verification key by kid.
type keyStore interface {
	key(ctx context.Context, kid string) (crypto.PublicKey, *refusal.Error)
}

func newOIDCIssuer(c config.OIDCIssuerConfig, defaultAud []string, client *http.Client) (*oidcIssuer, error) {
	o := &oidcIssuer{
		issuer:   c.Issuer,
		audience: c.Audience,
		kind:     KindHuman,
		roles:    NewRoleClaim(c.RolesClaim, c.Roles),
	}
	if len(o.audience) == 0 {
		o.audience = defaultAud
	}
	if c.Kind == string(KindAgent) {
		o.kind = KindAgent
	}
	if c.JWKSFile != "" {
		b, err := readLimited(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", c.Issuer, err)
		}
		set, err := parseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: jwks_file %s: %w", c.Issuer, c.JWKSFile, err)
		}
		o.keys = staticKeys(set)
		return o, nil
	}
	o.keys = &remoteKeys{issuer: c.Issuer, client: client}
	return o, nil
}

// verify checks t against this issuer and maps it to a Principal.
func (o *oidcIssuer) verify(ctx context.Context, t *token, now time.Time, skew time.Duration) (Principal, *refusal.Error) {
	key, e := o.keys.key(ctx, t.header.Kid)
	if e != nil {
		e.Fingerprint, e.Issuer, e.Subject = t.fingerprint, bearer.Claim(t.claims.Issuer), bearer.Claim(t.claims.Subject)
		return Principal{}, e
	}
	var all map[string]any
	if e := t.verify(key, &all); e != nil {
		return Principal{}, e
	}
	if t.claims.Subject == "" {
		return Principal{}, t.refuse(ReasonMissingClaim, "token has no sub claim")
	}
	if r, _, ok := printable.Identifier(t.claims.Subject); !ok {
		// The subject names the principal in the ledger and the console:
		// it must read as what it is.
		return Principal{}, t.refuse(ReasonMalformed, "sub claim holds %s; writ takes no subject with control or invisible characters", printable.Name(r))
	}
	if e := t.checkTimes(now, skew); e != nil {
		return Principal{}, e
	}
	if e := t.checkAudience(o.audience); e != nil {
		return Principal{}, e
	}
	return Principal{
		Kind:        o.kind,
		ID:          oidcID(o.issuer, t.claims.Subject),
		Subject:     t.claims.Subject,
		Issuer:      o.issuer,
		Roles:       o.roles.Roles(all),
		Method:      MethodOIDC,
		Expiry:      t.claims.Expiry.Time().UTC(),
		JTI:         t.claims.ID,
		Fingerprint: t.fingerprint,
	}, nil
}

// parseJWKS reads a JWKS, keeping the public signature keys. A set without any
// such key is an error.
func parseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		// "jwt-svid" lets a SPIFFE bundle serve as a JWKS (the dev issuer's does).
		if k.Use != "" && k.Use != "sig" && k.Use != "jwt-svid" {
			continue
		}
		pub := k.Public()
		if !pub.Valid() || !pub.IsPublic() {
			continue // symmetric keys are never verification keys
		}
		keys[k.KeyID] = pub.Key
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no public signature keys")
	}
	return keys, nil
}

// pick finds kid in keys; a token without kid may use the only key of a set.
func pick(keys map[string]crypto.PublicKey, kid string) (crypto.PublicKey, bool) {
	if k, ok := keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, true
		}
	}
	return nil, false
}

// staticKeys is a JWKS read from a file at start.
type staticKeys map[string]crypto.PublicKey

func (s staticKeys) key(_ context.Context, kid string) (crypto.PublicKey, *refusal.Error) {
	if k, ok := pick(s, kid); ok {
		return k, nil
	}
	return nil, refuse(ReasonUnknownKey, "key '%s' is not in the issuer's JWKS", bearer.Claim(kid))
}

// remoteKeys discovers an issuer's JWKS (OpenID Connect Discovery) and fetches
// it on first use, when a kid is unknown (at most every jwksMinRefetch) and
// when the set is older than jwksMaxAge. A failed refresh keeps the last set.
type remoteKeys struct {
	issuer string
	client *http.Client

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	jwksURL string
	keys    map[string]crypto.PublicKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
}

func (r *remoteKeys) key(ctx context.Context, kid string) (crypto.PublicKey, *refusal.Error) {
	r.mu.RLock()
	k, ok := pick(r.keys, kid)
	fresh := time.Since(r.fetched) < jwksMaxAge
	r.mu.RUnlock()
	if ok && fresh {
		return k, nil
	}
	err := r.refresh(ctx)
	r.mu.RLock()
	k, ok = pick(r.keys, kid)
	have := r.keys != nil
	r.mu.RUnlock()
	switch {
	case ok:
		return k, nil
	case !have && err != nil:
		return nil, refuse(ReasonKeysUnavailable, "keys of issuer %s are unavailable", r.issuer)
	}
	return nil, refuse(ReasonUnknownKey, "key '%s' is not in the issuer's JWKS", bearer.Claim(kid))
}

// refresh fetches the JWKS unless an attempt was made within jwksMinRefetch.
func (r *remoteKeys) refresh(ctx context.Context) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.RLock()
	recent := time.Since(r.tried) < jwksMinRefetch
	r.mu.RUnlock()
	if recent {
		return errors.New("fetched recently")
	}
	r.mu.Lock()
	r.tried = time.Now()
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ctx = oidc.ClientContext(ctx, r.client)
	if r.jwksURL == "" {
		p, err := oidc.NewProvider(ctx, r.issuer)
		if err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
		var doc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil || !strings.HasPrefix(doc.JWKSURI, "https://") {
			return errors.New("discovery document has no https jwks_uri")
		}
		r.jwksURL = doc.JWKSURI
	}
	keys, err := fetchJWKS(ctx, r.client, r.jwksURL)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.keys, r.fetched = keys, time.Now()
	r.mu.Unlock()
	return nil
}

func fetchJWKS(ctx context.Context, client *http.Client, url string) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS %s: HTTP %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBundleBytes {
		return nil, fmt.Errorf("JWKS %s is larger than %d bytes", url, maxBundleBytes)
	}
	return parseJWKS(b)
}
