package policy

// LimitsWithin reports whether a child scope's limits, inner, are no
// looser than its parent's, outer: every limit outer sets, inner sets too,
// at most as high; per_tool entries are compared by pattern, as written.
// inner may add limits of its own. nil limits nothing.
func LimitsWithin(inner, outer *Limits) bool {
	if outer == nil {
		return true
	}
	if inner == nil {
		return outer.Calls == nil && outer.PerMinute == nil && len(outer.PerTool) == 0
	}
	under := func(in, out *int64) bool { return out == nil || (in != nil && *in <= *out) }
	if !under(inner.Calls, outer.Calls) || !under(inner.PerMinute, outer.PerMinute) {
		return false
	}
	for tool, n := range outer.PerTool {
		if m, ok := inner.PerTool[tool]; !ok || m > n {
			return false
		}
	}
	return true
}
