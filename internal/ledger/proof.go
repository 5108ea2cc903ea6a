package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the
// tree of the given size, from the stored tiles.
func InclusionProof(ctx context.Context, read TileReader, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("index %d is not in a tree of size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return fetchProof(ctx, read, nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between two sizes.
func ConsistencyProof(ctx context.Context, read TileReader, size1, size2 uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return fetchProof(ctx, read, nodes)
}

func fetchProof(ctx context.Context, read TileReader, nodes proof.Nodes) ([][]byte, error) {
	// Tiles are read once each, however many nodes they hold.
	cache := map[TileID][]byte{}
	cached := func(ctx context.Context, id TileID) ([]byte, error) {
		if b, ok := cache[id]; ok {
			return b, nil
		}
		b, err := read(ctx, id)
		if err == nil {
			cache[id] = b
		}
		return b, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := nodeHash(ctx, id.Level, id.Index, cached)
		if err != nil {
			return nil, fmt.Errorf("proof node %d/%d: %w", id.Level, id.Index, err)
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// ProofHeader is the first line of a C2SP tlog-proof.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a parsed C2SP tlog-proof: an inclusion proof of one entry in the
// tree a signed checkpoint commits to.
type Proof struct {
	Extra      []byte
	Index      uint64
	Hashes     [][]byte
	Checkpoint []byte // the signed note, verbatim
}

// Marshal formats p as a tlog-proof file.
func (p Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	if len(p.Extra) > 0 {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// MaxProofBytes bounds the size of a proof file accepted by ParseProof.
const MaxProofBytes = 64 << 10

// ParseProof parses a tlog-proof file. It checks only the syntax; Verify
// checks the proof.
func ParseProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) > MaxProofBytes {
		return p, errors.New("tlog-proof: too large")
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return p, errors.New("tlog-proof: no blank line before the checkpoint")
	}
	p.Checkpoint = cp
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(make([]byte, 0, 4096), MaxProofBytes)
	line := 0
	sawIndex := false
	for sc.Scan() {
		t := sc.Text()
		line++
		switch {
		case line == 1:
			if t != ProofHeader {
				return p, fmt.Errorf("tlog-proof: first line %q, want %q", t, ProofHeader)
			}
		case line == 2 && strings.HasPrefix(t, "extra "):
			e, err := base64.StdEncoding.Strict().DecodeString(t[len("extra "):])
			if err != nil {
				return p, errors.New("tlog-proof: bad extra data")
			}
			p.Extra = e
		case !sawIndex:
			s, ok := strings.CutPrefix(t, "index ")
			if !ok {
				return p, fmt.Errorf("tlog-proof: line %d: want \"index N\"", line)
			}
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || strconv.FormatUint(n, 10) != s {
				return p, fmt.Errorf("tlog-proof: bad index %q", s)
			}
			p.Index, sawIndex = n, true
		default:
			h, err := base64.StdEncoding.Strict().DecodeString(t)
			if err != nil || len(h) != HashSize {
				return p, fmt.Errorf("tlog-proof: line %d is not a base64 SHA-256 hash", line)
			}
			if len(p.Hashes) >= 64 {
				return p, errors.New("tlog-proof: more than 64 proof hashes")
			}
			p.Hashes = append(p.Hashes, h)
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("tlog-proof: %w", err)
	}
	if !sawIndex {
		return p, errors.New("tlog-proof: no index line")
	}
	return p, nil
}

// Verify checks that leaf is entry p.Index of the log whose checkpoint p
// carries, signed by v for origin. It returns the checkpoint.
func (p Proof) Verify(leaf []byte, origin string, v note.Verifier) (Checkpoint, error) {
	cp, err := OpenCheckpoint(p.Checkpoint, origin, v)
	if err != nil {
		return cp, err
	}
	if err := proof.VerifyInclusion(hasher, p.Index, cp.Size, LeafHash(leaf), p.Hashes, cp.Root); err != nil {
		return cp, fmt.Errorf("inclusion of entry %d in checkpoint of size %d: %w", p.Index, cp.Size, err)
	}
	return cp, nil
}

// CheckConsistency proves, from the stored tiles, that the tree of the given
// size and root extends the one old commits to. Verify first: it is the tiles'
// agreement with the recomputed tree that makes the proof mean something.
func CheckConsistency(ctx context.Context, read TileReader, old Checkpoint, size uint64, root []byte) error {
	if old.Size > size {
		return fmt.Errorf("the checkpoint covers %d events but the ledger holds %d (truncated?)", old.Size, size)
	}
	p, err := ConsistencyProof(ctx, read, old.Size, size)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(hasher, old.Size, size, p, old.Root, root); err != nil {
		return fmt.Errorf("the ledger does not extend the checkpoint of size %d: %w", old.Size, err)
	}
	return nil
}
