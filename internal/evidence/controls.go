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
// evidence them, kept as data; docs/standards.md explains it. controlsV1
// is the mapping as bundles that name no version of it were written with.
//
//go:embed controls.csv
var controlsData []byte

//go:embed controls-v1.csv
var controlsV1 []byte

// ControlsVersion is the version of the mapping that Controls returns and
// that bundles are written with (Manifest.ControlsVersion). Verifying a
// bundle rebuilds its controls.csv from the mapping it names, so a change
// to the mapping is a new version, and every earlier one is kept as it
// was: version 1, of bundles that name none, is controls-v1.csv.
const ControlsVersion = 2

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
func Controls() ([]Control, error) { return controlsOf(ControlsVersion) }

// controlsOf returns version v of the mapping (0 is 1).
func controlsOf(v int) ([]Control, error) {
	data := controlsData
	switch v {
	case 0, 1:
		data = controlsV1
	case ControlsVersion:
	default:
		return nil, fmt.Errorf("controls mapping version %d: this writ knows versions 1 to %d", v, ControlsVersion)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
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
	controls, err := controlsOf(v.m.ControlsVersion)
	if err != nil {
		// The embedded files are checked by the tests, and verify checks
		// the version before it rebuilds the file.
		panic(err)
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

// frameworksText names the mapping's frameworks in report.html, as the
// bundle's version of the mapping has them.
func frameworksText(version int) string {
	if version <= 1 {
		return "the OWASP Top 10 for Agentic Applications, CSA MAESTRO,\nthe NIST AI RMF and the EU AI Act"
	}
	return "the OWASP Top 10 for Agentic Applications, CSA MAESTRO,\nthe NIST AI RMF, the EU AI Act, NIST CSF 2.0 and the OWASP Non-Human Identities Top 10"
}
