package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPatternBytes bounds one path pattern.
const MaxPatternBytes = 1024

// segKind is what one step of a pattern matches.
type segKind uint8

const (
	segName     segKind = iota // a member, by name (case-insensitive)
	segGlob                    // a member, by a name with '*' in it
	segIndex                   // an array element, by index
	segAnyIndex                // any array element: [*]
	segAny                     // any one member or element: *
	segAnyDepth                // zero or more steps: **
)

type seg struct {
	kind segKind
	name string // segName: the name; segGlob: ASCII-lowered glob
	n    int    // segIndex
}

// pattern is a parsed path pattern; its first segment matches the root.
type pattern []seg

// errPattern is wrapped by every error of parsePattern.
var errPattern = errors.New("redact: invalid path")

// ValidatePath reports whether p is a path pattern Redact can apply.
func ValidatePath(p string) error {
	_, err := parsePattern(p)
	return err
}

// parsePattern parses the grammar of the package documentation.
func parsePattern(p string) (pattern, error) {
	bad := func(format string, a ...any) (pattern, error) {
		return nil, fmt.Errorf("%w %q: %s", errPattern, p, fmt.Sprintf(format, a...))
	}
	if p == "" {
		return bad("empty")
	}
	if len(p) > MaxPatternBytes {
		return bad("longer than %d bytes", MaxPatternBytes)
	}
	var out pattern
	i := 0
	expectName := true // at the start or after a dot
	for i < len(p) {
		switch {
		case p[i] == '[':
			end, s, err := bracket(p, i)
			if err != nil {
				return bad("%v", err)
			}
			if expectName && len(out) == 0 && s.kind != segName {
				return bad("the root must be a name, * or **")
			}
			out, i, expectName = append(out, s), end, false
		case expectName:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' && p[j] != ']' && p[j] != '"' {
				j++
			}
			name := p[i:j]
			switch {
			case name == "":
				return bad("empty segment at byte %d", i)
			case name == "*":
				out = append(out, seg{kind: segAny})
			case name == "**":
				out = append(out, seg{kind: segAnyDepth})
			case strings.Contains(name, "**"):
				return bad("** must be a whole segment")
			case strings.Contains(name, "*"):
				out = append(out, seg{kind: segGlob, name: lowerASCII(name)})
			default:
				out = append(out, seg{kind: segName, name: name})
			}
			i, expectName = j, false
		case p[i] == '.':
			i, expectName = i+1, true
		default:
			return bad("unexpected %q at byte %d", p[i], i)
		}
	}
	if expectName {
		return bad("ends with a dot")
	}
	return out, nil
}

// bracket parses "[n]", "[*]" or `["name"]` at p[i].
func bracket(p string, i int) (int, seg, error) {
	end := strings.IndexByte(p[i:], ']')
	if i+1 < len(p) && p[i+1] == '"' {
		// A quoted name may itself hold ']': find the closing quote first.
		var name string
		dec := json.NewDecoder(strings.NewReader(p[i+1:]))
		if err := dec.Decode(&name); err != nil {
			return 0, seg{}, errors.New("bad quoted name")
		}
		j := i + 1 + int(dec.InputOffset())
		if j >= len(p) || p[j] != ']' {
			return 0, seg{}, errors.New(`a quoted name must be followed by "]"`)
		}
		return j + 1, seg{kind: segName, name: name}, nil
	}
	if end < 0 {
		return 0, seg{}, errors.New(`"[" without "]"`)
	}
	in := p[i+1 : i+end]
	if in == "*" {
		return i + end + 1, seg{kind: segAnyIndex}, nil
	}
	n, err := strconv.Atoi(in)
	if err != nil || n < 0 || in != strconv.Itoa(n) {
		return 0, seg{}, fmt.Errorf("index %q: want a number, * or a quoted name", in)
	}
	return i + end + 1, seg{kind: segIndex, n: n}, nil
}

// step is one step of a concrete path: a member name, or an index when
// key is false.
type step struct {
	name  string
	index int
	key   bool
}

// matches reports whether s matches the step.
func (s seg) matches(st step) bool {
	switch s.kind {
	case segName:
		return st.key && strings.EqualFold(s.name, st.name)
	case segGlob:
		return st.key && globFold(s.name, st.name)
	case segIndex:
		return !st.key && st.index == s.n
	case segAnyIndex:
		return !st.key
	default: // segAny, segAnyDepth
		return true
	}
}

// globFold matches name against glob (ASCII-lowered, '*' any run),
// folding ASCII case.
func globFold(glob, name string) bool {
	// Classic two-pointer glob with one backtrack point.
	gi, ni, starG, starN := 0, 0, -1, 0
	for ni < len(name) {
		switch {
		case gi < len(glob) && glob[gi] == '*':
			starG, starN = gi, ni
			gi++
		case gi < len(glob) && glob[gi] == lowerByte(name[ni]):
			gi++
			ni++
		case starG >= 0:
			starN++
			gi, ni = starG+1, starN
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerByte(c)
	}
	return string(b)
}

// appendStep appends a concrete step to a path being printed: ".name",
// `["name"]` when the name would not read back as itself, or "[n]".
func appendStep(dst []byte, st step) []byte {
	if !st.key {
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(st.index), 10)
		return append(dst, ']')
	}
	if plainName(st.name) {
		dst = append(dst, '.')
		return append(dst, st.name...)
	}
	q, _ := json.Marshal(st.name)
	dst = append(dst, '[')
	dst = append(dst, q...)
	return append(dst, ']')
}

// plainName reports whether a member name can be printed unquoted.
func plainName(s string) bool {
	if s == "" || s == "*" || s == "**" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == '[' || c == ']' || c == '"' || c == '*' || c < 0x20 || c == 0x7f:
			return false
		}
	}
	return true
}
