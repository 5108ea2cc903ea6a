package credential_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/refusal"
)

// Example shows the life of a task token: issue it after approval, verify it
// on a tool call, revoke the task, and watch the next call fail.
func Example() {
	dir, err := os.MkdirTemp("", "writ-credential-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	iss, err := credential.NewIssuer(dir, credential.IssuerOptions{Issuer: "writ"})
	if err != nil {
		log.Fatal(err)
	}
	token, _, err := iss.Issue(credential.Claims{
		Subject: "user:alice@example.org",
		Actors:  []string{"spiffe://example.org/agent/summarizer"},
		TaskID:  "01JTASK",
		TTL:     10 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := iss.Verify(context.Background(), token, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Subject, tok.Agent(), tok.Scope)

	iss.Revocations().RevokeTask(tok.TaskID)
	_, err = iss.Verify(context.Background(), token, time.Now())
	fmt.Println(refusal.HTTPStatus(err), credential.Challenge(err, false))
	// Output:
	// user:alice@example.org spiffe://example.org/agent/summarizer task:01JTASK
	// 401 Bearer realm="writ", error="invalid_token", error_description="access token has been revoked"
}
