// Package jcs implements the JSON Canonicalization Scheme of RFC 8785.
//
// The ledger hashes every event as canonical bytes, so two parties that hold
// the same JSON value must produce the same bytes regardless of how the value
// was spelled on the wire. Canonicalize turns any accepted JSON text into that
// one spelling:
//
//   - no insignificant whitespace;
//   - object members sorted by the UTF-16 code units of their decoded names,
//     as ECMAScript would sort them (so U+1F600 sorts before U+FB33);
//   - strings in UTF-8 with the minimum escaping: \" and \\, the short forms
//     \b \f \n \r \t, \u00XX (lowercase hex) for the other controls below
//     U+0020, and every other character written literally (including "/",
//     U+007F and U+2028);
//   - numbers as IEEE-754 doubles printed the way ECMAScript's
//     Number.prototype.toString prints them: the shortest digits that read
//     back to the same double, plain notation for magnitudes in [1e-6, 1e21)
//     and exponent notation such as 1e+21 or 1e-7 outside it, and -0 as 0;
//   - the literals true, false and null.
//
// Canonicalization is idempotent: canonical output canonicalizes to itself.
//
// # Strictness
//
// The input must be I-JSON (RFC 7493), which is what RFC 8785 assumes; this
// package fails closed rather than guess. It rejects, with an *Error that
// carries the byte offset and wraps one of the sentinel errors:
//
//   - text that is not exactly one JSON value (RFC 8259) with optional
//     surrounding whitespace: ErrSyntax;
//   - invalid UTF-8, or a \u escape that leaves a surrogate unpaired:
//     ErrInvalidUnicode;
//   - an object with two members whose names are equal after unescaping:
//     ErrDuplicateKey;
//   - a number whose magnitude is too large for a finite double (a number
//     too small rounds to zero or a subnormal, as in ECMAScript):
//     ErrNumberRange;
//   - arrays and objects nested more than MaxDepth deep: ErrTooDeep.
//
// Numbers are read as doubles, as RFC 8785 requires: an integer above 2^53
// may be canonicalized to a nearby value (9007199254740993 becomes
// 9007199254740992). Producers that need exact large integers should carry
// them as strings. A consumer that must not let canonical form differ from
// what it forwards refuses such documents first: InexactNumber finds a number
// ExactNumber says the canonical form would change.
//
// Canonicalize never panics, whatever the input, and its time and memory
// are linear in the input size, however the members are ordered or nested.
//
// Append writes into a caller's buffer and, once warmed up, allocates
// nothing; Canonicalize allocates only its result. Marshal is the convenience
// for Go values and costs an encoding/json pass on top.
package jcs
