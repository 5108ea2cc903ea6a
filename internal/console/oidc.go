package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
)

// oidcClient is the console's OIDC relying party. The provider is
// discovered at the first sign-in and remembered once that succeeds.
type oidcClient struct {
	cfg    config.ConsoleOIDCConfig
	secret string
	roles  identity.RoleClaim
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newOIDCClient(cfg config.ConsoleOIDCConfig, idc config.IdentityConfig, client *http.Client) (*oidcClient, error) {
	o := &oidcClient{cfg: cfg, client: client}
	if o.client == nil {
		o.client = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.ClientSecretFile != "" {
		b, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("console.oidc.client_secret_file: %w", err)
		}
		o.secret = strings.TrimSpace(string(b))
		if o.secret == "" {
			return nil, errors.New("console.oidc.client_secret_file is empty")
		}
	}
	claim, roles := cfg.RolesClaim, cfg.Roles
	for _, is := range idc.OIDC {
		if is.Issuer == cfg.Issuer {
			if claim == "" {
				claim = is.RolesClaim
			}
			if len(roles) == 0 {
				roles = is.Roles
			}
		}
	}
	o.roles = identity.NewRoleClaim(claim, roles)
	return o, nil
}

// ctx carries the console's HTTP client to go-oidc and oauth2.
func (o *oidcClient) ctx(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, o.client), oauth2.HTTPClient, o.client)
}

// setup discovers the provider once.
func (o *oidcClient) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(o.ctx(dctx), o.cfg.Issuer)
	if err != nil {
		return nil, nil, err
	}
	scopes := []string{oidc.ScopeOpenID}
	if len(o.cfg.Scopes) == 0 {
		scopes = append(scopes, "profile", "email")
	}
	scopes = append(scopes, o.cfg.Scopes...)
	o.oauth = &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.secret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.RedirectURL, Scopes: scopes}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	return o.oauth, o.verifier, nil
}

// authURL makes a fresh state, nonce and PKCE verifier, hands them to keep
// (which stores them in the session) and returns the provider's URL.
func (o *oidcClient) authURL(ctx context.Context, keep func(state, nonce, verifier string) bool) (string, error) {
	oc, _, err := o.setup(ctx)
	if err != nil {
		return "", err
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	if !keep(state, nonce, verifier) {
		return "", errors.New("the session ended")
	}
	return oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// finish exchanges code for tokens with the PKCE verifier and verifies the
// ID token (signature, issuer, audience, expiry, nonce), returning the
// principal with its mapped roles.
func (o *oidcClient) finish(ctx context.Context, code, verifier, nonce string, now time.Time) (identity.Principal, error) {
	oc, v, err := o.setup(ctx)
	if err != nil {
		return identity.Principal{}, errors.New("the identity provider could not be reached")
	}
	xctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tok, err := oc.Exchange(o.ctx(xctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return identity.Principal{}, fmt.Errorf("the code exchange failed: %w", errorText(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity.Principal{}, errors.New("the provider sent no ID token")
	}
	idt, err := v.Verify(o.ctx(xctx), raw)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("the ID token does not verify: %v", err)
	}
	if nonce == "" || subtle0(idt.Nonce, nonce) {
		return identity.Principal{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return identity.Principal{}, fmt.Errorf("the ID token's claims: %v", err)
	}
	roles := o.roles.Roles(claims)
	if len(roles) == 0 {
		return identity.Principal{}, fmt.Errorf("%s holds no writ role (claim %s)", idt.Subject, o.roles.Path())
	}
	sum := sha256.Sum256([]byte(raw))
	return identity.Principal{
		Kind: identity.KindHuman, ID: "oidc:" + o.cfg.Issuer + "#" + idt.Subject, Subject: idt.Subject,
		Issuer: o.cfg.Issuer, Roles: roles, Method: identity.MethodOIDC, Expiry: idt.Expiry.UTC(),
		Fingerprint: hex.EncodeToString(sum[:]),
	}, nil
}

// subtle0 reports whether a and b differ, in constant time.
func subtle0(a, b string) bool {
	return len(a) != len(b) || subtleCompare(a, b) != 1
}

// errorText keeps the provider's OAuth error code and description and drops
// the rest (which may echo request parameters).
func errorText(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("%s %s", limit(re.ErrorCode, 100), limit(re.ErrorDescription, 200))
		}
		return fmt.Errorf("HTTP %d from the token endpoint", re.Response.StatusCode)
	}
	return errors.New("the token endpoint could not be reached")
}
