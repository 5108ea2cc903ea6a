// Package credential is writ's just-in-time credential layer. After a task is
// approved, the agent exchanges its own identity token (a SPIFFE JWT-SVID or
// an OIDC token, verified by package identity) for a short-lived access token
// bound to that task, and presents it on every tool call.
//
// The pieces, in the order a request meets them:
//
//   - ParseExchange reads an RFC 8693 token-exchange request at
//     POST /oauth2/token; WriteToken and WriteExchangeError answer it.
//   - An Issuer (NewIssuer) holds writ's Ed25519 signing key. Issue mints an
//     EdDSA JWT access token with sub (the human requester), act (the agent,
//     nested for delegation), txn (the task), scope "task:<id>" and, when the
//     token is sender-constrained, cnf. JWKS is the public key set served at
//     /oauth2/jwks.
//   - Issuer.Verify checks a presented access token: signature, issuer,
//     audience, times and size. Verified tokens are cached by their SHA-256,
//     so a repeated token costs a hash and a map lookup, but the revocation
//     check (Issuer.Revocations) runs on every call, cached or not.
//   - VerifyDPoP checks an RFC 9449 DPoP proof and returns the key's RFC 7638
//     thumbprint; CheckBinding then enforces the token's cnf claim against
//     that thumbprint or the TLS client certificate (RFC 8705).
//
// Every refusal is a *refusal.Error that wraps one of the sentinel errors
// (ErrInvalidToken, ErrExpired, ErrRevoked, ErrBindingRequired,
// ErrBindingMismatch, ErrInvalidDPoPProof, ErrInvalidRequest) and carries the
// OAuth error code to send (its OAuth field, ErrorCode) and the kind its
// status comes from. Error text never contains a token, a proof or key
// material, and claim values in it are shortened and reduced to printable
// ASCII, so it is safe to return to the caller. WriteError and Challenge
// answer a refused resource request (401 with an RFC 6750 or RFC 9449
// WWW-Authenticate challenge).
//
// The token format, binding and revocation semantics are documented for
// operators and client authors in docs/credentials.md.
package credential
