// Package resource puts the URIs that name resources, and the scope
// patterns that match them, in one normal form before they are matched,
// and refuses what has no safe normal form. A resource that reads
// differently to writ and to the tool that serves it would let a scope
// such as kb://public/* reach kb://private/secret; these rules close that.
//
// Normalization follows RFC 3986 §6.2.2 (syntax-based normalization):
//
//   - the scheme and the host are lower-cased;
//   - percent-encodings get upper-case hex digits (%3a becomes %3A), and
//     those of unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~")
//     are decoded (%7E becomes ~, %2e becomes .);
//   - characters outside ASCII are percent-encoded as UTF-8 (RFC 3987
//     §3.1), so a normal form is plain ASCII and shows no character that
//     reorders text.
//
// Dot segments are refused, not resolved: a path segment "." or "..",
// written plainly or percent-encoded, or followed by parameters ("..;x",
// which some servers read as ".."), is an error. Resolving them (RFC 3986
// §5.2.4) would decide on kb://public/private/x while the tool that is
// handed the original text may join "../private/x" onto a directory of its
// own. For the same reason "." and ".." are refused in the query and the
// fragment as components delimited by "/", "?", "&", "=" or ";"
// (?file=../x), where servers often take a value as a path.
//
// Also refused, wherever they appear: an encoded "/" (%2F) or "\" (%5C),
// which a server may decode into a separator after writ has matched; a
// backslash; control characters (U+0000–U+001F, U+007F–U+009F), raw or
// encoded; a "%" not followed by two hex digits; a character a URI cannot
// hold unencoded (space, quote, "<", ">", "^", "`", "{", "|", "}", and "["
// or "]" outside the authority); an invalid scheme; and text that is not
// UTF-8. Relative references ("r", "docs/a") are accepted; the empty
// string is the empty resource.
//
// Patterns are normalized the same way, with '*' allowed in the scheme
// too. '*' matches any run of characters except '?' and '#', so the part
// of a pattern before its query cannot reach into a URI's query or
// fragment: kb://public/* matches kb://public/a/b but not
// kb://public/a?x=1; kb://public/*?* matches both. A pattern of '*' alone
// matches every resource. Everything other than '*' matches itself.
package resource
