package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
)

// checkOutput checks the value of -o.
func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return &usageError{msg: fmt.Sprintf("-o %q: want table or json", o), hint: "use -o table or -o json"}
	}
	return nil
}

// printJSON writes v as indented JSON.
func printJSON(io IO, v any) error {
	return encodeJSON(io, v, false)
}

// printJSONEscaped writes v as indented JSON with <, > and & escaped
// (\u003c, \u003e, \u0026), as the policy commands have always printed it.
func printJSONEscaped(io IO, v any) error {
	return encodeJSON(io, v, true)
}

func encodeJSON(io IO, v any, escapeHTML bool) error {
	enc := json.NewEncoder(io.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(escapeHTML)
	return enc.Encode(v)
}

// newTable returns an aligned writer for table output; Flush it.
func newTable(io IO) *tabwriter.Writer {
	return tabwriter.NewWriter(io.Stdout, 0, 4, 2, ' ', 0)
}
