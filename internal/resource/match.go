package resource

import (
	"slices"
	"strings"
)

// Glob reports whether s matches pattern, where '*' matches any run of
// characters (including '/', '.' and none) and every other byte matches
// itself. It is the matching of tool, operation and environment patterns;
// resources use Match, which adds the rule for '?' and '#'. There is no
// escape: scopes name tools and URIs, which never need a literal '*'. A
// pattern matched against another pattern's text (as delegation checks
// do) treats the other's '*' as an ordinary character, which makes the
// containment test sound: if Glob(outer, inner) then every string inner
// matches, outer matches too.
func Glob(pattern, s string) bool {
	// Iterative wildcard matching with single backtrack point: linear in
	// practice, O(len(p)*len(s)) worst case, no recursion.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Match reports whether uri matches pattern, both in normal form: '*'
// matches any run of characters but '?' and '#', a pattern of stars alone
// matches everything, every other byte matches itself. Each '?' and '#' of
// uri must therefore be met by the same character in pattern, and the
// pieces between them match as Glob does.
func Match(pattern, uri string) bool {
	if allStars(pattern) {
		return true
	}
	for {
		pi, ui := strings.IndexAny(pattern, "?#"), strings.IndexAny(uri, "?#")
		if pi < 0 || ui < 0 {
			return pi < 0 && ui < 0 && Glob(pattern, uri)
		}
		if pattern[pi] != uri[ui] || !Glob(pattern[:pi], uri[:ui]) {
			return false
		}
		pattern, uri = pattern[pi+1:], uri[ui+1:]
	}
}

// Covers reports whether every URI inner matches, outer matches too, both
// being patterns in normal form. It is conservative as Glob is: outer must
// match inner's text, with inner's '*' taken literally; and a pattern of
// stars alone, which matches what no other pattern does, is covered only
// by another.
func Covers(outer, inner string) bool {
	if allStars(inner) {
		return allStars(outer)
	}
	return Match(outer, inner)
}

func allStars(p string) bool {
	return p != "" && strings.Trim(p, "*") == ""
}

// MatchAny reports whether uri matches one of patterns, each put in normal
// form first. A uri or pattern that has none matches nothing.
func MatchAny(patterns []string, uri string) bool {
	u, err := Normalize(uri)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if n, err := NormalizePattern(p); err == nil && Match(n, u) {
			return true
		}
	}
	return false
}

// Within reports whether each of the patterns inner is covered by one of
// outer, all put in normal form first. An inner pattern that has no normal
// form is not within anything; an outer one covers nothing.
func Within(inner, outer []string) bool {
	outs := make([]string, 0, len(outer))
	for _, o := range outer {
		if n, err := NormalizePattern(o); err == nil {
			outs = append(outs, n)
		}
	}
	for _, p := range inner {
		n, err := NormalizePattern(p)
		if err != nil || !slices.ContainsFunc(outs, func(o string) bool { return Covers(o, n) }) {
			return false
		}
	}
	return true
}
