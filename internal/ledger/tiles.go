package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TilePath is a parsed C2SP tlog-tiles resource path below the log prefix:
// "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]".
type TilePath struct {
	Entries bool   // an entry bundle rather than a hash tile
	Level   uint64 // hash tile level; 0 for entries
	Index   uint64
	Width   uint64 // 1..256; 256 means a full tile
}

// ErrBadPath reports a tile path that the tlog-tiles spec does not allow.
var ErrBadPath = errors.New("malformed tile path")

// ParseTilePath parses a path such as "tile/0/x001/234.p/17".
func ParseTilePath(p string) (TilePath, error) {
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return TilePath{}, ErrBadPath
	}
	var tp TilePath
	head, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return TilePath{}, ErrBadPath
	}
	if head == "entries" {
		tp.Entries = true
	} else {
		l, err := strconv.ParseUint(head, 10, 8)
		if err != nil || strconv.FormatUint(l, 10) != head || l > 63 {
			return TilePath{}, ErrBadPath
		}
		tp.Level = l
	}
	tp.Width = TileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		ws := rest[i+3:]
		w, err := strconv.ParseUint(ws, 10, 16)
		if err != nil || strconv.FormatUint(w, 10) != ws || w < 1 || w >= TileWidth {
			return TilePath{}, ErrBadPath
		}
		tp.Width = w
		rest = rest[:i]
	}
	idx, err := parseTileIndex(rest)
	if err != nil {
		return TilePath{}, err
	}
	tp.Index = idx
	return tp, nil
}

// parseTileIndex parses "x001/x234/067": groups of three digits, every group
// but the last prefixed with "x".
func parseTileIndex(s string) (uint64, error) {
	parts := strings.Split(s, "/")
	var n uint64
	for i, part := range parts {
		last := i == len(parts)-1
		if !last {
			var ok bool
			if part, ok = strings.CutPrefix(part, "x"); !ok {
				return 0, ErrBadPath
			}
		}
		if len(part) != 3 {
			return 0, ErrBadPath
		}
		d, err := strconv.ParseUint(part, 10, 16)
		if err != nil {
			return 0, ErrBadPath
		}
		if n > (1<<63)/1000 {
			return 0, ErrBadPath
		}
		n = n*1000 + d
	}
	if len(parts) > 1 && strings.TrimPrefix(parts[0], "x") == "000" {
		return 0, ErrBadPath // no leading zero groups
	}
	return n, nil
}

// String formats the path as the tlog-tiles spec does.
func (tp TilePath) String() string {
	var b strings.Builder
	b.WriteString("tile/")
	if tp.Entries {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.FormatUint(tp.Level, 10))
	}
	b.WriteString("/")
	b.WriteString(formatTileIndex(tp.Index))
	if tp.Width < TileWidth {
		fmt.Fprintf(&b, ".p/%d", tp.Width)
	}
	return b.String()
}

func formatTileIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// ReadTile returns the contents of a hash tile in a tree of the given size:
// the hashes of width nodes at tile level tp.Level. It returns ErrNotFound
// when the tree is not yet that big, so a full tile is never served before it
// is complete.
func ReadTile(ctx context.Context, s Store, size uint64, tp TilePath) ([]byte, error) {
	if tp.Entries {
		return nil, errors.New("not a hash tile")
	}
	if !tileExists(size, tp.Level, tp.Index, tp.Width) {
		return nil, ErrNotFound
	}
	data, err := s.ReadTile(ctx, TileID{Level: tp.Level, Index: tp.Index})
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) < tp.Width*HashSize {
		return nil, fmt.Errorf("stored tile %s is short: %w", tp, ErrNotFound)
	}
	return data[:tp.Width*HashSize], nil
}

// ReadEntryBundle returns the tlog-tiles entry bundle: each leaf as a
// big-endian uint16 length and the leaf bytes.
func ReadEntryBundle(ctx context.Context, s Store, size uint64, tp TilePath) ([]byte, error) {
	if !tp.Entries {
		return nil, errors.New("not an entry bundle")
	}
	if !tileExists(size, 0, tp.Index, tp.Width) {
		return nil, ErrNotFound
	}
	start := tp.Index * TileWidth
	leaves, err := s.ReadLeaves(ctx, start, start+tp.Width)
	if err != nil {
		return nil, err
	}
	if uint64(len(leaves)) != tp.Width {
		return nil, fmt.Errorf("entry bundle %s: store returned %d leaves: %w", tp, len(leaves), ErrNotFound)
	}
	return EncodeBundle(leaves), nil
}

// EncodeBundle lays leaves out as a tlog-tiles entry bundle.
func EncodeBundle(leaves [][]byte) []byte {
	n := 0
	for _, l := range leaves {
		n += 2 + len(l)
	}
	out := make([]byte, 0, n)
	for _, l := range leaves {
		out = binary.BigEndian.AppendUint16(out, uint16(len(l)))
		out = append(out, l...)
	}
	return out
}

// DecodeBundle splits an entry bundle into its leaves.
func DecodeBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("entry bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

// tileExists reports whether a tree of size n holds at least width nodes in
// the tile at (level, index). A partial tile stays servable after the tile
// grows, since a tile's prefix never changes.
func tileExists(n, level, index, width uint64) bool {
	return width <= TileHashes(n, TileID{Level: level, Index: index})
}

// TileHashes is how many hashes tile id holds in a tree of size n: one for
// each of its nodes complete at that size, at most TileWidth.
func TileHashes(n uint64, id TileID) uint64 {
	w := levelWidth(n, id.Level)
	if w <= id.Index*TileWidth {
		return 0
	}
	return min(w-id.Index*TileWidth, TileWidth)
}
