package evidence

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
)

// controlsData is the mapping from controls to the event types that
// evidence them, kept as data; docs/standards.md explains it.
//
//go:embed controls.csv
var controlsData []byte

// Control is one row of the mapping.
type Control struct {
	Framework, ID, Title string
	// EventTypes are the event types that evidence the control; "*" is
	// every event; none means writ does not establish it.
	EventTypes []string
	Evidence   string
	Note       string
}

// Controls returns the mapping.
func Controls() ([]Control, error) {
	rows, err := csv.NewReader(bytes.NewReader(controlsData)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("controls mapping: %w", err)
	}
	var out []Control
	for i, r := range rows {
		if i == 0 {
			continue
		}
		if len(r) != 6 {
			return nil, fmt.Errorf("controls mapping: row %d has %d columns, want 6", i+1, len(r))
		}
		c := Control{Framework: r[0], ID: r[1], Title: r[2], Evidence: r[4], Note: r[5]}
		if r[3] != "" {
			c.EventTypes = strings.Split(r[3], ";")
		}
		out = append(out, c)
	}
	return out, nil
}

// controlsCSV is the bundle's controls.csv: each control with the indexes
// of this bundle's events that evidence it and whether any do.
func controlsCSV(v *view) []byte {
	controls, err := Controls()
	if err != nil {
		panic(err) // the embedded file is checked by the tests
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"framework", "control", "title", "status", "records", "evidence", "note"})
	for _, c := range controls {
		var recs []string
		for _, e := range v.events {
			for _, t := range c.EventTypes {
				if t == "*" || t == e.Event.Type {
					recs = append(recs, strconv.FormatUint(e.Index, 10))
					break
				}
			}
		}
		status := "evidenced"
		switch {
		case len(c.EventTypes) == 0:
			status = "not established by writ"
		case len(recs) == 0:
			status = "no records in this bundle"
		}
		w.Write([]string{c.Framework, c.ID, c.Title, status, strings.Join(recs, " "), c.Evidence, c.Note})
	}
	w.Flush()
	return b.Bytes()
}
