package ocsf

import jsonv1 "github.com/go-json-experiment/json/v1"

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

// decided and completed are the members of event.ActionDecided and
// event.ActionCompleted a call's record shows. The decision API records
// one such event per call, and a sink maps every one: decoding only these
// members, as event.Read decodes them (encoding/json's semantics, which
// check the whole document first and decode each member apart from the
// others), spares it the rest (obligations, policy IDs, digests).
// FuzzCallDataAsRead holds the two decodings equal.
type decided struct {
	ActionID  string   `json:"action_id"`
	Tool      string   `json:"tool"`
	Operation string   `json:"operation"`
	Resource  string   `json:"resource"`
	DataClass string   `json:"data_class"`
	Effect    string   `json:"effect"`
	Reasons   []string `json:"reasons"`
	Refused   string   `json:"refused"`
}

type completed struct {
	ActionID  string `json:"action_id"`
	Status    string `json:"status"`
	Tool      string `json:"tool"`
	Operation string `json:"operation"`
}

// readCall decodes into v the members it has of data; data that does not
// fit leaves v as far as it decoded, as event.Read does.
func readCall(data []byte, v any) {
	if len(data) > 0 {
		jsonv1.Unmarshal(data, v)
	}
}
