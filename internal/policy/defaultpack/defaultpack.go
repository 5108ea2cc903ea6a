// Package defaultpack holds writ's default policy pack, in Rego and in
// Cedar, with the same behaviour in both. It is active when no bundle is
// configured, and `writ policy init` writes it out for editing.
package defaultpack

import (
	"embed"
	"io/fs"
)

//go:embed rego cedar
var files embed.FS

// FS returns the pack for engine ("rego" or "cedar") rooted at its
// directory, or false for an unknown engine.
func FS(engine string) (fs.FS, bool) {
	switch engine {
	case "rego", "cedar":
		sub, err := fs.Sub(files, engine)
		return sub, err == nil
	}
	return nil, false
}
