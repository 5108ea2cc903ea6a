package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/testpki"
)

// TestUpstreamTLSFiles: the files are checked when read, errors name the
// file and never hold the key, and a client certificate whose files are
// replaced is read again for the next connection.
func TestUpstreamTLSFiles(t *testing.T) {
	pki := testpki.New(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(pki.KeyFile)
	for _, tc := range []struct {
		name string
		tls  config.UpstreamTLS
		want string
	}{
		{"missing CA", config.UpstreamTLS{CAFile: filepath.Join(dir, "nope.pem")}, "nope.pem"},
		{"CA not PEM", config.UpstreamTLS{CAFile: notPEM}, "holds no PEM certificate"},
		{"key not PEM", config.UpstreamTLS{CertFile: pki.CertFile, KeyFile: notPEM}, "key_file"},
		{"cert and key swapped", config.UpstreamTLS{CertFile: pki.KeyFile, KeyFile: pki.CertFile}, "key_file"},
	} {
		_, err := tc.tls.ClientConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), bytes.TrimSpace(key)[40:80]) {
			t.Errorf("%s: the error holds key material", tc.name)
		}
	}

	c, err := config.UpstreamTLS{CAFile: pki.CAFile, CertFile: pki.CertFile, KeyFile: pki.KeyFile, ServerName: "upstream.internal"}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCAs == nil || c.ServerName != "upstream.internal" || c.GetClientCertificate == nil {
		t.Fatalf("client config %+v: want the roots, the server name and the client certificate", c)
	}
	first, err := c.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Rotate: another certificate and key in the same files.
	next := testpki.New(t)
	later := time.Now().Add(time.Minute)
	for src, dst := range map[string]string{next.CertFile: pki.CertFile, next.KeyFile: pki.KeyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dst, later, later); err != nil {
			t.Fatal(err)
		}
	}
	rotated, err := c.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rotated.Certificate[0], first.Certificate[0]) {
		t.Error("the client certificate was not read again after its files changed")
	}
	if again, _ := c.GetClientCertificate(nil); again != rotated {
		t.Error("an unchanged certificate was read again")
	}
}
