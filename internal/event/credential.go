package event

import "time"

// CredentialIssued is credential.issued; the credential's ID is the
// envelope's jti.
type CredentialIssued struct {
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expires_at"`
	// Binding is "dpop", "mtls" or "none".
	Binding string `json:"binding"`
}

// CredentialRevoked is credential.revoked (jti in the envelope). Reason is
// ReasonTaskCompleted, ReasonTaskExpired or ReasonTaskRevoked.
type CredentialRevoked struct {
	Reason string `json:"reason"`
}
