package proxy

import "strings"

// Expand fills a resource template's {name} and {name...} wildcards with
// the values value returns (path wildcards of the matched rule). An
// unclosed brace is kept as text.
func Expand(tmpl string, value func(string) string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		name := strings.TrimSuffix(tmpl[i+1:i+j], "...")
		b.WriteString(value(name))
		tmpl = tmpl[i+j+1:]
	}
}
