package credential

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"

	"github.com/writhq/writ/internal/refusal"
)

// CheckBinding enforces tok's confirmation claim for one request. dpopJKT is
// the thumbprint VerifyDPoP returned for the request's proof ("" when the
// request carried none); clientCert is the verified TLS client certificate
// (nil when none). require is the environment's policy: when true a bearer
// token (no cnf) is refused with ErrBindingRequired.
//
//   - cnf.jkt: the request must carry a valid DPoP proof by that key.
//   - cnf.x5t#S256: the TLS client certificate must be the one bound.
//   - no cnf: accepted unless require is set. A DPoP proof sent with a bearer
//     token is ignored.
//
// Mismatches wrap ErrBindingMismatch.
func CheckBinding(tok *Token, dpopJKT string, clientCert *x509.Certificate, require bool) error {
	switch {
	case tok == nil:
		return tokenError(ErrInvalidToken, "no verified access token")
	case tok.Cnf.JKT != "":
		if dpopJKT == "" {
			return bindingError(tok, "access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof")
		}
		if dpopJKT != tok.Cnf.JKT {
			return bindingError(tok, "DPoP proof key does not match the key the access token is bound to")
		}
	case tok.Cnf.X5T != "":
		if clientCert == nil {
			return bindingError(tok, "access token is bound to a TLS client certificate; none was presented")
		}
		if X5T(clientCert) != tok.Cnf.X5T {
			return bindingError(tok, "TLS client certificate does not match the one the access token is bound to")
		}
	case require:
		e := tokenError(ErrBindingRequired, "a sender-constrained (DPoP or mTLS) access token is required")
		e.JTI, e.TaskID = tok.JTI, tok.TaskID
		return e
	}
	return nil
}

func bindingError(tok *Token, msg string) *refusal.Error {
	e := tokenError(ErrBindingMismatch, "%s", msg)
	e.JTI, e.TaskID = tok.JTI, tok.TaskID
	return e
}

func x5t(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
