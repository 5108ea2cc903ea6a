package witness

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// testKey is a witness key made from a fixed seed, and a cosigner that
// signs as the spec says, for the tests of parsing and verification.
type testKey struct {
	*Key
	priv ed25519.PrivateKey
}

func newTestKey(t testing.TB, name string, seed byte) testKey {
	t.Helper()
	s := make([]byte, 32)
	for i := range s {
		s[i] = seed
	}
	priv := ed25519.NewKeyFromSeed(s)
	k, err := NewKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return testKey{Key: k, priv: priv}
}

// cosign returns k's cosignature line of the checkpoint text at time ts.
func (k testKey) cosign(text string, ts uint64) string {
	sig := binary.BigEndian.AppendUint32(nil, k.id)
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(k.priv, signedMessage(ts, []byte(text)))...)
	return sigPrefix + k.name + " " + base64.StdEncoding.EncodeToString(sig)
}

const testCheckpoint = "example.org/log\n42\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

// TestKeyAgreesWithFormats: the key ID writ derives and the cosignatures
// it verifies agree with an independent implementation of the spec
// (transparency-dev/formats), both ways.
func TestKeyAgreesWithFormats(t *testing.T) {
	k := newTestKey(t, "witness.example/w1", 7)
	fv, err := fnote.NewVerifierForCosignatureV1(k.String())
	if err != nil {
		t.Fatal(err)
	}
	if fv.KeyHash() != k.KeyHash() || fv.Name() != k.Name() {
		t.Fatalf("formats derives %s %08x, writ %s %08x", fv.Name(), fv.KeyHash(), k.Name(), k.KeyHash())
	}
	line := k.cosign(testCheckpoint, 1_700_000_000)
	signed := []byte(testCheckpoint + "\n" + line + "\n")
	n, err := note.Open(signed, note.VerifierList(fv))
	if err != nil || len(n.Sigs) != 1 {
		t.Fatalf("formats does not accept writ's test cosignature: %v", err)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil || ts.Unix() != 1_700_000_000 {
		t.Errorf("formats reads time %v, %v", ts, err)
	}
	// And writ accepts what formats signs.
	seed := make([]byte, 32)
	seed[0] = 9
	skey := "PRIVATE+KEY+witness.example/w2+00000000+" + base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, seed...))
	fs, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed2, err := note.Sign(&note.Note{Text: testCheckpoint}, fs)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := NewKey("witness.example/w2", ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	at, line2, ok, err := k2.Find(signed2)
	if err != nil || !ok || time.Since(at) > time.Hour {
		t.Fatalf("writ does not find formats' cosignature in %q: %v %v %v", signed2, at, ok, err)
	}
	if _, err := note.Open(signed2, note.VerifierList(k2)); err != nil {
		t.Errorf("writ's Key as a note.Verifier: %v", err)
	}
	if !strings.HasPrefix(line2, sigPrefix+"witness.example/w2 ") {
		t.Errorf("line %q", line2)
	}
}

func TestParseKey(t *testing.T) {
	k := newTestKey(t, "witness.example/w1", 1)
	if got, err := ParseKey(" " + k.String() + "\n"); err != nil || got.String() != k.String() {
		t.Fatalf("ParseKey(%q) = %v, %v", k.String(), got, err)
	}
	name, rest, _ := strings.Cut(k.String(), "+")
	hash, b64, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	plain := append([]byte{1}, raw[1:]...)
	for _, tc := range []struct{ vkey, want string }{
		{"", "name+keyid+base64"},
		{"witness.example/w1", "name+keyid+base64"},
		{"+" + hash + "+" + b64, "name"},
		{"a b+" + hash + "+" + b64, "name"},
		{name + "+" + hash + "+!!", "base64"},
		{name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(plain), "plain Ed25519 note key"},
		{name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{6}, raw[1:]...)), "0x06"},
		{name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(raw[:20]), "33 bytes"},
		{name + "+0000000+" + b64, "8 lowercase hex"},
		{name + "+" + strings.ToUpper(hash) + "+" + b64, "8 lowercase hex"},
		{name + "+00000000+" + b64, "does not match"},
		{"other.example+" + hash + "+" + b64, "does not match"},
	} {
		if _, err := ParseKey(tc.vkey); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%q): %v, want an error saying %q", tc.vkey, err, tc.want)
		}
	}
}

func TestVerifyLine(t *testing.T) {
	k := newTestKey(t, "witness.example/w1", 1)
	other := newTestKey(t, "witness.example/w1", 2)
	good := k.cosign(testCheckpoint, 1_700_000_000)
	if at, err := k.VerifyLine([]byte(testCheckpoint), good); err != nil || at.Unix() != 1_700_000_000 {
		t.Fatalf("VerifyLine: %v %v", at, err)
	}
	name, b64, _ := strings.Cut(strings.TrimPrefix(good, sigPrefix), " ")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	flip := append([]byte(nil), raw...)
	flip[20] ^= 1
	retime := append([]byte(nil), raw...)
	retime[11]++ // the timestamp is signed
	for _, tc := range []struct{ line, text string }{
		{good, strings.Replace(testCheckpoint, "42", "43", 1)},
		{other.cosign(testCheckpoint, 1), testCheckpoint},
		{sigPrefix + name + " " + base64.StdEncoding.EncodeToString(flip), testCheckpoint},
		{sigPrefix + name + " " + base64.StdEncoding.EncodeToString(retime), testCheckpoint},
		{sigPrefix + name + " " + base64.StdEncoding.EncodeToString(raw[:40]), testCheckpoint},
		{sigPrefix + "other " + b64, testCheckpoint},
		{"- " + name + " " + b64, testCheckpoint},
		{sigPrefix + name + " " + b64 + " x", testCheckpoint},
	} {
		if _, err := k.VerifyLine([]byte(tc.text), tc.line); err == nil {
			t.Errorf("VerifyLine(%q) over %q verified", tc.line, tc.text)
		}
	}
	huge := binary.BigEndian.AppendUint32(nil, k.id)
	huge = binary.BigEndian.AppendUint64(huge, 1<<63)
	huge = append(huge, ed25519.Sign(k.priv, signedMessage(1<<63, []byte(testCheckpoint)))...)
	if _, err := k.VerifyLine([]byte(testCheckpoint), sigPrefix+k.name+" "+base64.StdEncoding.EncodeToString(huge)); err == nil {
		t.Error("a timestamp beyond 2^63-1 verified")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"0\n": 0, "7\n": 7, "20852014\n": 20852014, "9223372036854775807\n": 1<<63 - 1} {
		if got, err := ParseSize([]byte(in)); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "\n", "7", "07\n", "-1\n", "1 \n", "+1\n", "1\n\n", "9223372036854775808\n", "99999999999999999999\n", "0x10\n"} {
		if _, err := ParseSize([]byte(in)); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

// TestAnswer: each answer of the protocol is read as the spec says.
func TestAnswer(t *testing.T) {
	k := newTestKey(t, "witness.example/w1", 1)
	other := newTestKey(t, "witness.example/w2", 2)
	c := &Client{URL: "http://w/", Key: k.Key}
	text := []byte(testCheckpoint)
	good := k.cosign(testCheckpoint, 1_700_000_000)

	cs, err := c.answer(200, "text/plain", []byte(other.cosign(testCheckpoint, 5)+"\n"+good+"\n"), text)
	if err != nil || cs.Line != good || cs.Key != k.String() || cs.Time.Unix() != 1_700_000_000 {
		t.Fatalf("200 with two lines: %+v %v", cs, err)
	}
	var conflict *ConflictError
	if _, err := c.answer(409, "text/x.tlog.size", []byte("17\n"), text); !errors.As(err, &conflict) || conflict.Size != 17 {
		t.Errorf("409: %v", err)
	}
	for _, status := range []int{400, 403, 404, 422, 418} {
		_, err := c.answer(status, "text/plain", []byte("bad consistency proof\n"), text)
		var r *RefusedError
		if !errors.As(err, &r) || r.Status != status || r.Detail != "bad consistency proof" {
			t.Errorf("%d: %v, want a refusal", status, err)
		}
	}
	for _, tc := range []struct {
		status int
		ct     string
		body   string
	}{
		{200, "", other.cosign(testCheckpoint, 5) + "\n"}, // no line by the key
		{200, "", good}, // no final newline
		{200, "", strings.Replace(good, "A", "B", 1) + "\n"},
		{200, "", ""},
		{409, "text/plain", "17\n"},
		{409, "text/x.tlog.size", "seventeen\n"},
		{408, "", ""}, {429, "", ""}, {500, "", "oops"}, {502, "", ""}, {301, "", ""},
	} {
		_, err := c.answer(tc.status, tc.ct, []byte(tc.body), text)
		if err == nil || IsRefusal(err) || errors.As(err, &conflict) {
			t.Errorf("%d %q %q: %v, want a failure to retry", tc.status, tc.ct, tc.body, err)
		}
	}
	if s := detail([]byte("a\x1b[31m\u202eb " + strings.Repeat("x", 500))); strings.ContainsAny(s, "\x1b\u202e") || len([]rune(s)) > 201 {
		t.Errorf("detail %q", s)
	}
}

func TestAppendAndNoteText(t *testing.T) {
	k := newTestKey(t, "witness.example/w1", 1)
	signed := []byte(testCheckpoint + "\n\u2014 example.org/log AAAA\n")
	line := k.cosign(testCheckpoint, 3)
	out := Append(signed, []Cosignature{{Line: line}})
	if string(out) != string(signed)+line+"\n" {
		t.Fatalf("Append: %q", out)
	}
	text, err := NoteText(out)
	if err != nil || string(text) != testCheckpoint {
		t.Fatalf("NoteText: %q %v", text, err)
	}
	if _, _, ok, err := k.Find(out); !ok || err != nil {
		t.Errorf("Find: %v %v", ok, err)
	}
	if (Cosignature{Line: line}).Name() != "witness.example/w1" {
		t.Error("Name")
	}
	for _, bad := range []string{"", testCheckpoint, testCheckpoint + "\nno dash\n", testCheckpoint + "\n\u2014 a b"} {
		if _, err := NoteText([]byte(bad)); err == nil {
			t.Errorf("NoteText(%q) accepted", bad)
		}
	}
}
