// Package redact keeps credentials and other secrets out of what writ
// stores and shows: the arguments and outputs of tool calls, on their way
// to the ledger, evidence bundles, the console, webhooks and logs.
//
// An Engine replaces a value with the constant Replacement ("[redacted]")
// when any of these applies:
//
//   - Its key is a well-known secret name, at any depth: password, secret,
//     token, api_key, authorization, cookie, private_key, client_secret,
//     access_key and the rest of DefaultKeys. Keys are compared normalized
//     (ASCII case folded; '-', '_', '.' and spaces dropped), so apiKey,
//     API-KEY and api_key are one key. A key also matches when its
//     normalized form ends with one of DefaultSuffixes (db_password,
//     githubToken, aws_secret_access_key) or starts with "password". The
//     whole value goes, whatever its type: a string, a number, an object.
//   - Its path matches a pattern (see below): one of the engine's own
//     (Config.Paths, from the operator) or one given with the call (a
//     policy's redact obligations).
//   - It is a string holding a recognizable credential, whatever its key
//     (see Detectors): cloud and SaaS keys, JWTs, PEM private keys,
//     bearer and basic credentials, passwords in URLs, and key=value or
//     "key": "value" text naming a secret key. Only the credential is
//     replaced, so "use ghp_… now" is kept as "use [redacted] now". An
//     object key holding a credential is replaced the same way.
//
// The defaults always apply; configuration only adds keys and paths.
//
// # Paths
//
// A path names values inside a document whose root is named, as in
// "arguments.password" or "output.items[0].token". Segments are separated
// by dots; an array element is "[n]". In a pattern:
//
//	arguments.password        the member "password" of the arguments
//	arguments.user.password   a nested member
//	arguments.list[0].token   "token" in the first element of "list"
//	arguments.items[*].token  "token" in every element of "items"
//	arguments.*.token         "token" one level down (member or element)
//	arguments.**.password     "password" at any depth, including the top
//	output.**                 the whole output
//	**.ssn                    "ssn" anywhere, in arguments and output
//	arguments.*_pin           members whose name ends in "_pin"
//	arguments["a.b"]          a member whose name holds '.', '[', ']' or '*'
//
// Member names in a pattern match case-insensitively. A pattern naming the
// whole document (just "arguments") replaces each member of an object, so
// the document stays an object. A pattern that does not parse is treated
// as naming the whole document it is rooted in: a mistake in a policy
// redacts too much, never too little.
//
// # What is recorded
//
// Redact returns the canonical (RFC 8785) JSON of the redacted document
// and the concrete paths it replaced, sorted, such as
// "arguments.nested.password" and "arguments.list[0].token": enough for an
// auditor to know what was withheld, nothing about the values. The
// replacement is the same constant for every value, never a digest, so a
// stored body cannot confirm a guess.
package redact
