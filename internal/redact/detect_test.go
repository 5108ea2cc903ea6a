package redact_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/redact"
)

// Credentials are assembled here so that no real-looking one sits in the
// source as a literal.
var (
	ghp       = "ghp_" + strings.Repeat("A1b2", 9)
	githubPAT = "github_pat_" + strings.Repeat("Ab3", 8) + "_" + strings.Repeat("x9Y", 20)
	akia      = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
	slack     = "xoxb-" + "1234567890-0987654321-" + strings.Repeat("aB", 12)
	slackHook = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + strings.Repeat("X", 24)
	jwt       = "eyJhbGciOiJFUzI1NiJ9" + ".eyJzdWIiOiJhbGljZSJ9" + ".c2lnbmF0dXJlLWJ5dGVz"
	google    = "AIza" + "SyD" + strings.Repeat("a-B_c1", 5) + "zz"
	stripe    = "sk_" + "live_" + strings.Repeat("4eC39HqLyjWDarjtT1zdp7dc", 1)
	pemKey    = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + strings.Repeat("q", 64) + "\n-----END RSA PRIVATE KEY-----"
	bearer    = "mF_9.B5f-4.1JqM" + "x7Yz2kP"
	basic     = base64.StdEncoding.EncodeToString([]byte("alice:hunter2"))
)

func TestDetectors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"aws key id", "key " + akia + " end", "key [redacted] end"},
		{"aws temporary key id", "ASIA" + "ZZZZZZZZZZZZZZZZ", "[redacted]"},
		{"aws key id near miss: short", "AKIA" + "IOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL"},
		{"aws key id near miss: lower case", "AKIA" + "iosfodnn7example", "AKIAiosfodnn7example"},
		{"aws key id near miss: inside a word", "X" + akia, "X" + akia},
		{"aws secret beside its key id", akia + " " + awsSecret, "[redacted] [redacted]"},
		{"aws secret shape alone", awsSecret, awsSecret},
		{"aws near miss: hex digest", akia + " " + strings.Repeat("0a1b2c3d4e", 4), "[redacted] " + strings.Repeat("0a1b2c3d4e", 4)},
		{"github classic", "use " + ghp + " now", "use [redacted] now"},
		{"github oauth", "gho_" + strings.Repeat("z", 36), "[redacted]"},
		{"github app", "ghs_" + strings.Repeat("9", 40), "[redacted]"},
		{"github fine-grained", githubPAT, "[redacted]"},
		{"github near miss: short", "ghp_" + strings.Repeat("a", 35), "ghp_" + strings.Repeat("a", 35)},
		{"github near miss: other prefix", "ghx_" + strings.Repeat("a", 36), "ghx_" + strings.Repeat("a", 36)},
		{"slack bot token", "token is " + slack, "token is [redacted]"},
		{"slack user token", "xoxp-" + "12345-67890-abcdef", "[redacted]"},
		{"slack near miss", "xoxq-" + "1234567890", "xoxq-1234567890"},
		{"slack webhook", "post to " + slackHook + " please", "post to [redacted] please"},
		{"slack near miss: other path", "https://hooks.slack.com/help", "https://hooks.slack.com/help"},
		{"jwt", "Token: " + jwt, "Token: [redacted]"},
		{"jwt alone", jwt, "[redacted]"},
		{"jwt near miss: two parts", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"},
		{"jwt near miss: no dots", "eyJhbGciOiJFUzI1NiJ9", "eyJhbGciOiJFUzI1NiJ9"},
		{"pem private key", "key:\n" + pemKey + "\nbye", "key:\n[redacted]\nbye"},
		{"pem private key without end", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "[redacted]"},
		{"pem near miss: certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"pem near miss: public key", "-----BEGIN PUBLIC KEY-----\nMIIB", "-----BEGIN PUBLIC KEY-----\nMIIB"},
		{"google api key", "k=" + google, "k=[redacted]"},
		{"google near miss: short", "AIza" + "SyD123", "AIzaSyD123"},
		{"stripe live key", stripe, "[redacted]"},
		{"stripe near miss: publishable", "pk_" + "live_" + strings.Repeat("a", 24), "pk_live_" + strings.Repeat("a", 24)},
		{"bearer", "Authorization: Bearer " + bearer, "Authorization: [redacted]"},
		{"bearer in prose", "sent with bearer " + bearer + " today", "sent with bearer [redacted] today"},
		{"bearer near miss: prose", "the bearer of internationalization news", "the bearer of internationalization news"},
		{"basic", "curl -H 'Basic " + basic + "'", "curl -H 'Basic [redacted]'"},
		{"basic near miss: prose", "basic information", "basic information"},
		{"url password", "postgres://app:s3cret@db:5432/x", "postgres://app:[redacted]@db:5432/x"},
		{"url near miss: port", "https://example.org:8443/a@b", "https://example.org:8443/a@b"},
		{"url near miss: user only", "ssh://git@example.org/x", "ssh://git@example.org/x"},
		{"key=value", "login user=bob password=hunter2 ok", "login user=bob password=[redacted] ok"},
		{"query string", "GET /x?api_key=k-123&page=2", "GET /x?api_key=[redacted]&page=2"},
		{"yaml", "db_password: hunter2\nhost: h", "db_password: [redacted]\nhost: h"},
		{"json in text", `{"token": "t-1", "n": 2}`, `{"token": "[redacted]", "n": 2}`},
		{"escaped json in text", `{\"secret\":\"s-1\"}`, `{\"secret\":\"[redacted]\"}`},
		{"key=value near miss: other key", "tokens=5 max_tokens: 10 token_type: bearer", "tokens=5 max_tokens: 10 token_type: bearer"},
		{"key=value near miss: empty", "password=", "password="},
		{"already redacted", "password=[redacted]", "password=[redacted]"},
		{"nothing", "an ordinary sentence: with a colon", "an ordinary sentence: with a colon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.Text(tt.in); got != tt.want {
				t.Errorf("Text(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
			// The same inside a JSON document, under a key that is no secret's.
			doc, _ := json.Marshal(map[string]string{"note": tt.in})
			got, paths, err := redact.Default().Redact("output", doc, nil)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]string
			if err := json.Unmarshal(got, &out); err != nil {
				t.Fatal(err)
			}
			wantPaths := 0
			if tt.want != tt.in {
				wantPaths = 1
			}
			// The AWS secret shape is looked for in the whole document,
			// the key ID in it or not, so Text and Redact agree on it.
			if out["note"] != tt.want || len(paths) != wantPaths {
				t.Errorf("Redact: %q %v, want %q", out["note"], paths, tt.want)
			}
		})
	}
}

// A credential's value is replaced in place: the rest of the text stays.
func TestTextKeepsTheRest(t *testing.T) {
	in := "first " + ghp + " then " + jwt + " and " + akia
	if got, want := redact.Text(in), "first [redacted] then [redacted] and [redacted]"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
