package evidence

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/internal/ocsf"
)

// Format names the bundle layout this package writes and reads.
const Format = "writ-evidence-bundle/v1"

// OCSFVersion is the OCSF schema version of ocsf.jsonl.
const OCSFVersion = ocsf.Version

// Paths inside a bundle.
const (
	ManifestPath    = "manifest.json"
	EventsPath      = "events.jsonl"
	CheckpointPath  = "checkpoint"
	KeyPath         = "verifier.key"
	ControlsPath    = "controls.csv"
	OCSFPath        = "ocsf.jsonl"
	ReportPath      = "report.html"
	proofsDir       = "proofs/"
	payloadsDir     = "payloads/"
	policiesDir     = "policies/"
	proofSuffix     = ".tlog-proof"
	saltSuffix      = ".salt"
	policyEngineRel = "ENGINE"
	policyFilesRel  = "files/"
)

// Manifest is manifest.json: what the bundle holds and the SHA-256 of
// every other file in it.
type Manifest struct {
	Format string `json:"format"`
	// TaskID is the task exported; Tasks are it and its descendants, whose
	// events the bundle carries. Ancestors' lifecycle events are included
	// as context, so the chain can be checked from its start.
	TaskID    string   `json:"task_id"`
	Tasks     []string `json:"tasks"`
	Ancestors []string `json:"ancestors,omitempty"`
	// Window, when set, limited the actions exported to a time range; the
	// task's lifecycle events are always included.
	Window *Window `json:"window,omitempty"`
	// CreatedAt is when the bundle was written.
	CreatedAt time.Time `json:"created_at"`
	// Origin is the log's origin; CheckpointSize the size of the checkpoint
	// every proof is against.
	Origin         string `json:"origin"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Events is the number of lines of events.jsonl.
	Events int `json:"events"`
	// Policies maps each policy version that decided an event to the
	// directory holding its sources.
	Policies map[string]string `json:"policies"`
	// Erased lists bodies committed to but not disclosed because they were
	// erased, with the index of the erasure event.
	Erased      []Erased `json:"erased,omitempty"`
	OCSFVersion string   `json:"ocsf_version"`
	// ControlsVersion is the version of the controls mapping controls.csv
	// was written with (ControlsVersion); absent, version 1.
	ControlsVersion int `json:"controls_version,omitempty"`
	// Files lists every file of the bundle but the manifest, by path.
	Files []File `json:"files"`
}

// Window is a time range, either end open.
type Window struct {
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

// Erased is a body the ledger erased.
type Erased struct {
	Index        uint64 `json:"index"`
	Name         string `json:"name"`
	ErasureIndex uint64 `json:"erasure_index"`
}

// File is one file of the bundle with its SHA-256.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// EventLine is one line of events.jsonl: the ledger index and the leaf,
// byte for byte as the tree commits to it.
type EventLine struct {
	Index uint64  `json:"index"`
	Event rawJSON `json:"event"`
}

// rawJSON is json.RawMessage that keeps its bytes verbatim both ways.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func proofPath(index uint64) string { return proofsDir + strconv.FormatUint(index, 10) + proofSuffix }

func payloadPath(index uint64, name string) string {
	return payloadsDir + strconv.FormatUint(index, 10) + "/" + name
}

// policyDir is where a version's sources live: policies/<hex>/.
func policyDir(version string) (string, error) {
	h, ok := strings.CutPrefix(version, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("policy version %q is not sha256:<hex>", version)
	}
	return policiesDir + h + "/", nil
}
