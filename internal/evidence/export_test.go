package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// Reseal rebuilds, from a bundle's events.jsonl and payloads, everything
// the bundle derives from them — the event count, controls.csv, ocsf.jsonl,
// report.html — and then the manifest's file list: a forger who drops
// events and rebuilds the rest consistently, with writ's own code.
func Reseal(files map[string][]byte) error {
	v := &verifier{files: files, rep: &Report{Failures: []Failure{}}, bad: map[uint64]bool{}}
	if err := json.Unmarshal(files[ManifestPath], &v.m); err != nil {
		return err
	}
	v.readEvents()
	v.payloads()
	m := v.m
	m.Events = len(v.events)
	vw := &view{m: &m, events: v.events}
	files[ControlsPath] = controlsCSV(vw)
	files[OCSFPath] = ocsfJSONL(vw)
	files[ReportPath] = reportHTML(vw)
	m.Files = nil
	for p, data := range files {
		if p == ManifestPath {
			continue
		}
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, File{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	files[ManifestPath] = append(mb, '\n')
	return nil
}
