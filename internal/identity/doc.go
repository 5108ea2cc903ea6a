// Package identity decides who is calling writ. It verifies SPIFFE JWT-SVIDs
// and X.509-SVIDs from agent workloads and OIDC JWTs from humans (and from
// agents that carry OIDC tokens), maps them to a Principal with roles, and
// refuses everything else with an RFC 6750 answer and an auth.rejected event.
//
// The server builds one Authenticator with New, wraps its API with
// RequireRole, reads the caller with PrincipalFrom, and serves TLS with
// TLSConfig so clients may present X.509-SVIDs. Verification fails closed: a
// token is accepted only when its algorithm is one of a fixed asymmetric set,
// its key comes from a configured trust source, its signature verifies, its
// audience names writ and its times hold within the configured clock skew.
//
// Dev mode (EnsureDevIssuer, DevToken, DevSVID) mints tokens from a local key
// for the quickstart and tests. It is trusted only when Options.Dev is set.
package identity
