// Package version tells which writ this is: the module version the binary
// was built from, or "(devel)" for a build from a working tree.
package version

import "runtime/debug"

// String returns writ's version.
func String() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
