package credential

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRFC9449Examples checks JKT and ATH against the worked examples of
// RFC 9449 (§6.1 cnf.jkt of the example key, §7.1 ath of the example token).
func TestRFC9449Examples(t *testing.T) {
	coord := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(b)
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(),
		X: coord("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"),
		Y: coord("9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA")}
	got, err := JKT(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"; got != want {
		t.Errorf("JKT = %s, want %s", got, want)
	}
	if got, want := ATH("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("ATH = %s, want %s", got, want)
	}
	if _, err := JKT("not a key"); err == nil {
		t.Error("JKT accepted a string")
	}
}

func TestVerifyDPoP(t *testing.T) {
	k := keysOnce(t)
	const at = "access.token.value"
	for _, tc := range []struct {
		name   string
		opts   proofOpts
		method string
		htu    string
		token  string
		now    time.Time
		want   error
	}{
		{name: "ES256", opts: proofOpts{}, token: at},
		{name: "EdDSA", opts: proofOpts{alg: "EdDSA", key: k.ed}, token: at},
		{name: "RS256", opts: proofOpts{alg: "RS256", key: k.rsa}, token: at},
		{name: "PS256", opts: proofOpts{alg: "PS256", key: k.rsa}, token: at},
		{name: "token endpoint, no ath", opts: proofOpts{}},
		{name: "query and fragment ignored", opts: proofOpts{claims: map[string]any{"htu": testHTU + "?a=1#f"}}, htu: testHTU + "?b=2", token: at},
		{name: "scheme and host case", opts: proofOpts{claims: map[string]any{"htu": "HTTPS://Writ.Example/v1/authorize"}}, token: at},
		{name: "default port", opts: proofOpts{claims: map[string]any{"htu": "https://writ.example:443/v1/authorize"}}, token: at},
		{name: "fractional iat", opts: proofOpts{claims: map[string]any{"iat": float64(testNow.Unix()) + 0.5}}, token: at},
		{name: "iat at window edge", opts: proofOpts{}, now: testNow.Add(DPoPWindow), token: at},

		{name: "wrong htm", opts: proofOpts{claims: map[string]any{"htm": "GET"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "lowercase htm", opts: proofOpts{claims: map[string]any{"htm": "post"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong htu path", opts: proofOpts{claims: map[string]any{"htu": "https://writ.example/v1/tasks"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong htu host", opts: proofOpts{claims: map[string]any{"htu": "https://evil.example/v1/authorize"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong htu scheme", opts: proofOpts{claims: map[string]any{"htu": "http://writ.example/v1/authorize"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong htu port", opts: proofOpts{claims: map[string]any{"htu": "https://writ.example:8443/v1/authorize"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "relative htu", opts: proofOpts{claims: map[string]any{"htu": "/v1/authorize"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "stale iat", opts: proofOpts{}, now: testNow.Add(DPoPWindow + time.Second), token: at, want: ErrInvalidDPoPProof},
		{name: "future iat", opts: proofOpts{}, now: testNow.Add(-DPoPWindow - time.Second), token: at, want: ErrInvalidDPoPProof},
		{name: "no iat", opts: proofOpts{claims: map[string]any{"iat": nil}}, token: at, want: ErrInvalidDPoPProof},
		{name: "string iat", opts: proofOpts{claims: map[string]any{"iat": "1773500966"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "no jti", opts: proofOpts{claims: map[string]any{"jti": nil}}, token: at, want: ErrInvalidDPoPProof},
		{name: "missing ath", opts: proofOpts{claims: map[string]any{"ath": nil}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong ath", opts: proofOpts{claims: map[string]any{"ath": ATH("another.token")}}, token: at, want: ErrInvalidDPoPProof},
		{name: "ath without token", opts: proofOpts{claims: map[string]any{"ath": ATH(at)}}, want: ErrInvalidDPoPProof},
		{name: "private EC key in jwk", opts: proofOpts{header: map[string]any{"jwk": withD(publicJWK(t, k.ec), k.ec.D)}}, token: at, want: ErrInvalidDPoPProof},
		{name: "symmetric jwk", opts: proofOpts{header: map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}, token: at, want: ErrInvalidDPoPProof},
		{name: "HS256", opts: proofOpts{alg: "HS256"}, token: at, want: ErrInvalidDPoPProof},
		{name: "alg none", opts: proofOpts{alg: "none", key: nil}, token: at, want: ErrInvalidDPoPProof},
		{name: "ES384 not allowed", opts: proofOpts{alg: "ES384"}, token: at, want: ErrInvalidDPoPProof},
		{name: "alg and key disagree", opts: proofOpts{alg: "RS256", key: k.rsa, header: map[string]any{"jwk": publicJWK(t, k.ec)}}, token: at, want: ErrInvalidDPoPProof},
		{name: "signed by another key", opts: proofOpts{header: map[string]any{"jwk": publicJWK(t, k.otherE)}}, token: at, want: ErrInvalidDPoPProof},
		{name: "RSA 1024", opts: proofOpts{alg: "RS256", key: k.rsa, header: map[string]any{"jwk": publicJWK(t, k.rsa1k)}}, token: at, want: ErrInvalidDPoPProof},
		{name: "no jwk", opts: proofOpts{header: map[string]any{"jwk": nil}}, token: at, want: ErrInvalidDPoPProof},
		{name: "wrong typ", opts: proofOpts{header: map[string]any{"typ": "JWT"}}, token: at, want: ErrInvalidDPoPProof},
		{name: "crit header", opts: proofOpts{header: map[string]any{"crit": []string{"x"}, "x": 1}}, token: at, want: ErrInvalidDPoPProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method == "" {
				tc.method = http.MethodPost
			}
			if tc.htu == "" {
				tc.htu = testHTU
			}
			if tc.now.IsZero() {
				tc.now = testNow
			}
			if tc.opts.alg == "none" {
				tc.opts.key = k.ec // for the jwk header; signRaw ignores it for none
			}
			proof := makeProof(t, tc.opts, tc.token)
			if tc.opts.alg == "none" {
				parts := strings.Split(proof, ".")
				proof = parts[0] + "." + parts[1] + "."
			}
			jkt, err := VerifyDPoP(proof, tc.method, tc.htu, tc.token, tc.now, NewReplayCache(0))
			wantErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			key := tc.opts.key
			if key == nil {
				key = k.ec
			}
			if want, _ := JKT(key.Public()); jkt != want {
				t.Errorf("jkt = %s, want %s", jkt, want)
			}
		})
	}
}

func withD(jwk map[string]any, d *big.Int) map[string]any {
	out := map[string]any{"d": b64(d.FillBytes(make([]byte, 32)))}
	for k, v := range jwk {
		out[k] = v
	}
	return out
}

func TestVerifyDPoPReplay(t *testing.T) {
	replay := NewReplayCache(2)
	p1 := makeProof(t, proofOpts{}, "")
	if _, err := VerifyDPoP(p1, "POST", testHTU, "", testNow, replay); err != nil {
		t.Fatal(err)
	}
	_, err := VerifyDPoP(p1, "POST", testHTU, "", testNow.Add(time.Second), replay)
	wantErr(t, err, ErrInvalidDPoPProof)
	// The same jti under another key is another proof.
	sameJTI := proofOpts{key: keysOnce(t).otherE, claims: map[string]any{"jti": jtiOf(t, p1)}}
	if _, err := VerifyDPoP(makeProof(t, sameJTI, ""), "POST", testHTU, "", testNow, replay); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
	// Full: a third live proof is refused rather than forgetting one.
	_, err = VerifyDPoP(makeProof(t, proofOpts{}, ""), "POST", testHTU, "", testNow, replay)
	wantErr(t, err, ErrInvalidDPoPProof)
	// Once the first two are past the window they are swept.
	later := testNow.Add(2*DPoPWindow + time.Second)
	fresh := makeProof(t, proofOpts{claims: map[string]any{"iat": later.Unix()}}, "")
	if _, err := VerifyDPoP(fresh, "POST", testHTU, "", later, replay); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if n := replay.Len(); n != 1 {
		t.Errorf("replay cache holds %d entries, want 1", n)
	}
	_, err = VerifyDPoP(p1, "POST", testHTU, "", testNow, nil)
	wantErr(t, err, ErrInvalidDPoPProof)
}

func jtiOf(t *testing.T, proof string) string {
	var c dpopClaims
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[1])
	if err := jsonUnmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.JTI
}

func TestVerifyDPoPSizeAndShape(t *testing.T) {
	for _, proof := range []string{"", "a.b", "a.b.c", strings.Repeat("a", MaxDPoPProofBytes) + ".b.c", "e30.e30.e30"} {
		_, err := VerifyDPoP(proof, "POST", testHTU, "", testNow, NewReplayCache(0))
		wantErr(t, err, ErrInvalidDPoPProof)
	}
}

func TestDPoPProofHeader(t *testing.T) {
	h := http.Header{}
	if p, err := DPoPProof(h); p != "" || err != nil {
		t.Fatalf("absent: %q, %v", p, err)
	}
	h.Add("DPoP", "x")
	if p, err := DPoPProof(h); p != "x" || err != nil {
		t.Fatalf("one: %q, %v", p, err)
	}
	h.Add("DPoP", "y")
	_, err := DPoPProof(h)
	wantErr(t, err, ErrInvalidDPoPProof)
}

func TestNormalizeHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://Writ.Example":             "https://writ.example/",
		"HTTPS://writ.example:443/a/b?x#y": "https://writ.example/a/b",
		"http://writ.example:80/a":         "http://writ.example/a",
		"http://writ.example:8080/a":       "http://writ.example:8080/a",
		"https://[::1]:443/a":              "https://[::1]/a",
		"https://[::1]:8443/a":             "https://[::1]:8443/a",
		"https://writ.example/a%2Fb":       "https://writ.example/a%2Fb",
		"ftp://writ.example/":              "",
		"https://user@writ.example/":       "",
		"/relative":                        "",
		"https:opaque":                     "",
		"https://:443/":                    "",
	} {
		got, ok := normalizeHTU(in)
		if !ok {
			got = ""
		}
		if got != want {
			t.Errorf("normalizeHTU(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerifyDPoPSharedReplay: with a shared record, a proof another
// replica accepted is refused, and a record that fails refuses the proof.
func TestVerifyDPoPSharedReplay(t *testing.T) {
	claimed := map[string]bool{} // the other replicas' record
	var down bool
	shared := func(_ context.Context, key []byte, _ time.Time) (bool, error) {
		if down {
			return false, errors.New("connection refused")
		}
		if claimed[string(key)] {
			return false, nil
		}
		claimed[string(key)] = true
		return true, nil
	}
	a, b := NewReplayCache(0), NewReplayCache(0)
	a.Share(shared)
	b.Share(shared)
	p := makeProof(t, proofOpts{}, "")
	if _, err := VerifyDPoP(p, "POST", testHTU, "", testNow, a); err != nil {
		t.Fatal(err)
	}
	_, err := VerifyDPoP(p, "POST", testHTU, "", testNow, b)
	wantErr(t, err, ErrInvalidDPoPProof)
	down = true
	_, err = VerifyDPoP(makeProof(t, proofOpts{}, ""), "POST", testHTU, "", testNow, b)
	wantErr(t, err, ErrInvalidDPoPProof)
}
