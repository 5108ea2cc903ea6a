package identity

import (
	"context"
	"slices"
	"time"
)

// Kind says whether a principal is a person or a workload.
type Kind string

// Kinds of principal.
const (
	KindHuman Kind = "human"
	KindAgent Kind = "agent"
)

// Method says how a principal proved its identity.
type Method string

// Proof methods.
const (
	MethodJWTSVID  Method = "jwt-svid"
	MethodX509SVID Method = "x509-svid"
	MethodOIDC     Method = "oidc"
)

// Role is a permission set a principal holds in writ.
type Role string

// Roles. Config maps claims (OIDC) or SPIFFE IDs to these.
const (
	RoleRequester Role = "requester"
	RoleApprover  Role = "approver"
	RoleAuditor   Role = "auditor"
	RoleAdmin     Role = "admin"
)

// AllRoles lists every role in a fixed order.
var AllRoles = []Role{RoleRequester, RoleApprover, RoleAuditor, RoleAdmin}

// Principal is a verified caller. Every package that needs to know who acted
// takes a Principal; ID is the value written into ledger events.
type Principal struct {
	// Kind is human or agent.
	Kind Kind `json:"kind"`
	// ID is the stable identifier: the SPIFFE ID for SPIFFE workloads
	// ("spiffe://example.org/agent/summarizer", the same for JWT- and
	// X.509-SVIDs), or "oidc:" + issuer + "#" + sub for OIDC tokens
	// ("oidc:https://idp.example.com#248289761001"). Issuers may not contain
	// '#', so the first '#' separates issuer and subject.
	ID string `json:"id"`
	// Subject is the token's sub claim, or the SPIFFE ID.
	Subject string `json:"subject"`
	// Issuer is the OIDC issuer, or "spiffe://<trust domain>" for SVIDs.
	Issuer string `json:"issuer"`
	// Roles are the writ roles mapped from claims or SPIFFE ID, sorted.
	Roles []Role `json:"roles,omitempty"`
	// Method is how the identity was proven.
	Method Method `json:"method"`
	// Expiry is when the token or certificate stops being valid.
	Expiry time.Time `json:"expiry"`
	// JTI is the token's jti claim, if it had one.
	JTI string `json:"jti,omitempty"`
	// Fingerprint is the hex SHA-256 of the token (or of the leaf certificate
	// for X.509-SVIDs); safe to log and record, unlike the token.
	Fingerprint string `json:"fingerprint"`
}

// HasRole reports whether p holds r. Roles do not imply each other: an admin
// who should approve is mapped to approver as well, so separation of duties
// stays visible in config.
func (p Principal) HasRole(r Role) bool { return slices.Contains(p.Roles, r) }

// HasAnyRole reports whether p holds at least one of roles; with no roles it
// reports true.
func (p Principal) HasAnyRole(roles ...Role) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

func (p Principal) clone() Principal {
	p.Roles = slices.Clone(p.Roles)
	return p
}

type principalKey struct{}

// WithPrincipal returns a context carrying p; RequireRole does this for handlers.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal RequireRole verified for this request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// oidcID returns the stable ID of an OIDC subject.
func oidcID(issuer, sub string) string { return "oidc:" + issuer + "#" + sub }
