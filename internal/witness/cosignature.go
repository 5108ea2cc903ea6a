package witness

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Cosignature is one witness's verified cosignature of one checkpoint.
type Cosignature struct {
	// Size is the size of the checkpoint cosigned.
	Size uint64
	// Key is the witness's verifier key (vkey), which names it.
	Key string
	// Time is the witness's timestamp: when it cosigned.
	Time time.Time
	// Line is the signed-note signature line, "— <name> <base64>", without
	// its final newline.
	Line string
}

// Name returns the witness name the cosignature's line carries.
func (c Cosignature) Name() string {
	name, _, _ := strings.Cut(strings.TrimPrefix(c.Line, sigPrefix), " ")
	return name
}

// sigPrefix starts every signed-note signature line: an em dash and a space.
const sigPrefix = "\u2014 "

// Limits on what a witness may answer.
const (
	maxResponseBytes = 16 << 10
	maxResponseLines = 32
)

// splitNote splits a signed note into its text (with its final newline)
// and its signature lines (each without its newline).
func splitNote(n []byte) (text []byte, sigs []string, err error) {
	i := bytes.LastIndex(n, []byte("\n\n"))
	if i < 0 || len(n) == 0 || n[len(n)-1] != '\n' {
		return nil, nil, errors.New("not a signed note")
	}
	text = n[:i+1]
	for _, l := range strings.Split(string(n[i+2:len(n)-1]), "\n") {
		if !strings.HasPrefix(l, sigPrefix) {
			return nil, nil, errors.New("not a signed note: a signature line must start with \u2014")
		}
		sigs = append(sigs, l)
	}
	return text, sigs, nil
}

// NoteText returns the text of a signed note: the checkpoint body, with
// its final newline, without any signature line.
func NoteText(signed []byte) ([]byte, error) {
	text, _, err := splitNote(signed)
	return text, err
}

// parseLine splits a signature line into its name and decoded signature.
func parseLine(line string) (name string, sig []byte, err error) {
	rest, ok := strings.CutPrefix(line, sigPrefix)
	if !ok {
		return "", nil, errors.New("a signature line must start with \u2014 and a space")
	}
	name, b64, ok := strings.Cut(rest, " ")
	if !ok || !validName(name) || strings.Contains(b64, " ") {
		return "", nil, errors.New("a signature line is \u2014 <name> <base64>")
	}
	sig, err = base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(sig) < 5 {
		return "", nil, errors.New("the signature is not base64 of a key ID and a signature")
	}
	return name, sig, nil
}

// owns reports whether line carries k's name and key ID.
func (k *Key) owns(line string) bool {
	name, sig, err := parseLine(line)
	return err == nil && name == k.name && binary.BigEndian.Uint32(sig) == k.id
}

// VerifyLine checks that line is k's cosignature/v1 of the checkpoint whose
// note text is text, and returns it with its timestamp. A line by another
// key is an error too: the caller picks the lines to check.
func (k *Key) VerifyLine(text []byte, line string) (time.Time, error) {
	name, sig, err := parseLine(line)
	if err != nil {
		return time.Time{}, err
	}
	if name != k.name || binary.BigEndian.Uint32(sig) != k.id {
		return time.Time{}, fmt.Errorf("the line is not by witness %s", k.vkey)
	}
	if len(sig) != cosigLen {
		return time.Time{}, fmt.Errorf("a cosignature/v1 holds %d bytes, this one %d", cosigLen, len(sig))
	}
	t := binary.BigEndian.Uint64(sig[4:])
	if t > math.MaxInt64 {
		return time.Time{}, errors.New("the cosignature's timestamp is beyond 2^63-1")
	}
	if !ed25519.Verify(k.pub, signedMessage(t, text), sig[12:]) {
		return time.Time{}, errors.New("the cosignature does not verify")
	}
	return time.Unix(int64(t), 0).UTC(), nil
}

// Find returns k's cosignature among the signature lines of the signed
// note, verified, and whether there is one. A line that carries k's name
// and key ID but does not verify is an error.
func (k *Key) Find(signed []byte) (time.Time, string, bool, error) {
	text, sigs, err := splitNote(signed)
	if err != nil {
		return time.Time{}, "", false, err
	}
	for _, l := range sigs {
		if !k.owns(l) {
			continue
		}
		t, err := k.VerifyLine(text, l)
		if err != nil {
			return time.Time{}, "", false, fmt.Errorf("cosignature of %s: %w", k.name, err)
		}
		return t, l, true, nil
	}
	return time.Time{}, "", false, nil
}

// ParseResponse parses the body of a witness's 200 answer to
// add-checkpoint: one or more signature lines, each ending in a newline.
// It checks their syntax only; which of them verify is the caller's
// question.
func ParseResponse(body []byte) ([]string, error) {
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("the answer is larger than %d bytes", maxResponseBytes)
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, errors.New("the answer is not signature lines ending in a newline")
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) > maxResponseLines {
		return nil, fmt.Errorf("the answer holds more than %d signature lines", maxResponseLines)
	}
	for i, l := range lines {
		if _, _, err := parseLine(l); err != nil {
			return nil, fmt.Errorf("line %d of the answer: %w", i+1, err)
		}
	}
	return lines, nil
}

// ParseSize parses the body of a witness's 409 answer (text/x.tlog.size):
// a decimal tree size with no leading zeroes and a newline.
func ParseSize(body []byte) (uint64, error) {
	s, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok || len(s) == 0 || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return 0, errors.New("a tree size answer is a decimal number and a newline")
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("a tree size answer is a decimal number and a newline")
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, errors.New("the tree size is out of range")
		}
		n = n*10 + d
	}
	if n > math.MaxInt64 {
		return 0, errors.New("the tree size is out of range")
	}
	return n, nil
}

// Append returns the signed note with the cosignatures' lines added after
// its own signatures, in the order given, so that a client verifying the
// log's signature and a witness policy can read it as one note.
func Append(signed []byte, cs []Cosignature) []byte {
	out := bytes.Clone(signed)
	for _, c := range cs {
		out = append(out, c.Line...)
		out = append(out, '\n')
	}
	return out
}
