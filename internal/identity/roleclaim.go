package identity

import "strings"

// RoleClaim maps an OIDC token's roles claim to writ roles: the claim at a
// dotted path (default "groups"), whose values each grant the roles the
// configuration lists for them.
type RoleClaim struct {
	path   []string
	values map[string][]Role // claim value → roles it grants
}

// NewRoleClaim reads the claim's dotted path (empty: "groups") and the
// configured roles, each with the claim values that grant it.
func NewRoleClaim(claim string, roles map[string][]string) RoleClaim {
	if claim == "" {
		claim = "groups"
	}
	rc := RoleClaim{path: strings.Split(claim, "."), values: map[string][]Role{}}
	for _, role := range AllRoles {
		for _, v := range roles[string(role)] {
			rc.values[v] = append(rc.values[v], role)
		}
	}
	return rc
}

// Path is the claim's dotted path.
func (rc RoleClaim) Path() string { return strings.Join(rc.path, ".") }

// Roles maps the values found at the claim path to writ roles, in AllRoles
// order. A string value counts as a one-element list; anything else grants
// nothing.
func (rc RoleClaim) Roles(claims map[string]any) []Role {
	var v any = claims
	for _, p := range rc.path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	var values []string
	switch x := v.(type) {
	case string:
		values = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	}
	granted := map[Role]bool{}
	for _, s := range values {
		for _, r := range rc.values[s] {
			granted[r] = true
		}
	}
	var out []Role
	for _, r := range AllRoles {
		if granted[r] {
			out = append(out, r)
		}
	}
	return out
}
