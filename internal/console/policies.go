package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// policyStats is what the console has learned of policy versions from the
// ledger. It scans only leaves it has not seen, so each visit costs the
// events appended since the last.
type policyStats struct {
	mu       sync.Mutex
	next     uint64
	versions []*versionInfo
	byID     map[string]*versionInfo
}

// versionInfo is one policy version as the ledger records it.
type versionInfo struct {
	Version   string
	Engine    string
	LoadedAt  time.Time
	Index     uint64 // of its first policy.loaded event
	Decisions int    // policy.decided, action.authorized and action.denied events
	Active    bool
}

// maxScanPerVisit bounds the leaves one page visit reads; the rest are read
// by the next visits.
const maxScanPerVisit = 200_000

// update reads the leaves appended since the last call.
func (ps *policyStats) update(ctx context.Context, s ledger.Store) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.byID == nil {
		ps.byID = map[string]*versionInfo{}
	}
	stop := errors.New("enough")
	read := 0
	err := s.ScanLeaves(ctx, ps.next, func(index uint64, leaf []byte) error {
		if read == maxScanPerVisit {
			return stop
		}
		read++
		ps.next = index + 1
		var e struct {
			Type          string          `json:"type"`
			Time          time.Time       `json:"time"`
			PolicyVersion string          `json:"policy_version"`
			Data          json.RawMessage `json:"data"`
		}
		if json.Unmarshal(leaf, &e) != nil || e.PolicyVersion == "" {
			return nil
		}
		v := ps.byID[e.PolicyVersion]
		if v == nil {
			v = &versionInfo{Version: e.PolicyVersion, LoadedAt: e.Time, Index: index}
			ps.byID[e.PolicyVersion] = v
			ps.versions = append(ps.versions, v)
		}
		switch e.Type {
		case ledger.TypePolicyLoaded:
			var d event.PolicyLoaded
			if json.Unmarshal(e.Data, &d) == nil && v.Engine == "" {
				v.Engine = d.Engine
			}
		case ledger.TypePolicyDecided, ledger.TypeActionAuthorized, ledger.TypeActionDenied:
			v.Decisions++
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

// snapshot returns copies of the versions, newest first.
func (ps *policyStats) snapshot(active string) []versionInfo {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]versionInfo, 0, len(ps.versions))
	for i := len(ps.versions) - 1; i >= 0; i-- {
		v := *ps.versions[i]
		v.Active = v.Version == active
		out = append(out, v)
	}
	return out
}

// policiesBody is the policies page's data.
type policiesBody struct {
	Active, Engine string
	Versions       []versionInfo
	Show           string // a version whose files are shown
	Files          []policy.File
	ShowError      string
	A, B           string // versions compared
	Diff           []fileDiff
	DiffError      string
}

// policiesPage lists the policy versions the ledger knows, with their
// decision counts; ?show=V shows a version's files, ?a=V1&b=V2 a diff.
func (c *Console) policiesPage(w http.ResponseWriter, r *http.Request, u user) {
	ctx := r.Context()
	if err := c.policyStats.update(ctx, c.cfg.Store); err != nil {
		c.log.ErrorContext(ctx, "console: scanning the ledger for policy versions", "err", err)
		c.errorPage(w, r, &u, http.StatusServiceUnavailable, "Store unavailable", "The ledger could not be read; see the server log.")
		return
	}
	body := policiesBody{}
	if c.cfg.Policy != nil {
		body.Active, body.Engine = c.cfg.Policy.Version(), c.cfg.Policy.Engine()
	}
	body.Versions = c.policyStats.snapshot(body.Active)
	known := func(v string) bool {
		return slices.ContainsFunc(body.Versions, func(x versionInfo) bool { return x.Version == v })
	}
	q := r.URL.Query()
	if s := q.Get("show"); s != "" {
		body.Show = s
		if !known(s) {
			body.ShowError = "The ledger records no policy version " + limit(s, 80) + "."
		} else if src, err := c.sources(ctx, s); err != nil {
			body.ShowError = err.Error()
		} else {
			body.Files = src.Files
		}
	}
	if a, b := q.Get("a"), q.Get("b"); a != "" || b != "" {
		body.A, body.B = a, b
		switch {
		case !known(a) || !known(b):
			body.DiffError = "Pick two versions the ledger records."
		default:
			sa, err := c.sources(ctx, a)
			if err != nil {
				body.DiffError = err.Error()
				break
			}
			sb, err := c.sources(ctx, b)
			if err != nil {
				body.DiffError = err.Error()
				break
			}
			body.Diff = diffSources(sa, sb)
		}
	}
	c.render(w, r, &u, http.StatusOK, "policies", "Policies", "policies", body)
}

// sources reads a version's files from the source store.
func (c *Console) sources(ctx context.Context, version string) (policy.Sources, error) {
	if c.cfg.Sources == nil {
		return policy.Sources{}, errors.New("no policy source store is configured")
	}
	src, err := c.cfg.Sources.Get(ctx, version)
	if errors.Is(err, policy.ErrNotFound) {
		return policy.Sources{}, errors.New("the sources of " + shortVersion(version) + " are not in the source store")
	}
	if err != nil {
		c.log.ErrorContext(ctx, "console: policy sources", "version", version, "err", err)
		return policy.Sources{}, errors.New("the sources of " + shortVersion(version) + " could not be read or no longer match their version")
	}
	return src, nil
}
