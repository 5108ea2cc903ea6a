package ocsf

// call is what the record of a call's result takes from its
// authorization.
type call struct{ tool, op, resource, class, pv, decision string }

// calls remembers authorized calls by action ID: all of them (max 0), as
// a bundle's few need, or the last max, as a sink following the whole log
// can afford. A result whose call was forgotten maps without its tool,
// as one whose authorization a bundle's time window left out.
type calls struct {
	max  int
	byID map[string]call
	// order holds the remembered IDs, oldest first, from head on.
	order []string
	head  int
}

func (c *calls) add(id string, a call) {
	if id == "" {
		return
	}
	if _, ok := c.byID[id]; ok {
		c.byID[id] = a // seen again (delivered again): already in order
		return
	}
	c.byID[id] = a
	if c.max <= 0 {
		return
	}
	c.order = append(c.order, id)
	if len(c.order)-c.head > c.max {
		delete(c.byID, c.order[c.head])
		c.order[c.head] = ""
		c.head++
	}
	if c.head > c.max {
		// Drop the forgotten prefix now and then, not at every add.
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}

func (c *calls) get(id string) (call, bool) {
	a, ok := c.byID[id]
	return a, ok
}
