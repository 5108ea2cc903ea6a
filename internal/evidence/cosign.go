package evidence

import (
	"fmt"
	"strings"
	"time"
)

// CheckedCosignature is a witness's cosignature of the bundle's
// checkpoint that verified.
type CheckedCosignature struct {
	Witness string    `json:"witness"`
	Key     string    `json:"key"`
	Time    time.Time `json:"time"`
}

// cosignatures checks, when witnesses are required, that the checkpoint
// carries a verifying cosignature by at least the quorum of them (each
// proof file carries the same checkpoint, compared byte for byte). Without
// that quorum no event counts as verified: they are proven against a
// checkpoint no witness vouches for. Without witnesses required, cosignature
// lines are noted, not checked.
func (v *verifier) cosignatures(opts VerifyOptions) {
	if !v.haveCP {
		return
	}
	if len(opts.Witnesses) == 0 {
		if n := strings.Count(string(v.cpNote), "\n\u2014 ") - 1; n > 0 {
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("the checkpoint carries %d signature line(s) besides the log's, such as witness cosignatures; pass --witness KEY to require and check them", n))
		}
		return
	}
	quorum := opts.Quorum
	if quorum == 0 {
		quorum = len(opts.Witnesses)
	}
	v.rep.WitnessQuorum = quorum
	seen := map[string]bool{}
	for _, k := range opts.Witnesses {
		if seen[k.String()] {
			continue
		}
		seen[k.String()] = true
		at, _, ok, err := k.Find(v.cpNote)
		switch {
		case err != nil:
			v.fail("witness", "%s: %v", CheckpointPath, err)
		case ok:
			v.rep.Cosignatures = append(v.rep.Cosignatures, CheckedCosignature{Witness: k.Name(), Key: k.String(), Time: at})
		}
	}
	if n := len(v.rep.Cosignatures); n < quorum {
		var names []string
		for _, k := range opts.Witnesses {
			names = append(names, k.Name())
		}
		v.failAll("witness", "the checkpoint (size %d) carries verifying cosignatures by %d of the witnesses %s, fewer than the %d required",
			v.cpSize, n, strings.Join(names, ", "), quorum)
	}
}
