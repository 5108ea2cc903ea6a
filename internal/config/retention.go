package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// RetentionConfig says how long writ keeps the payload bodies beside the
// ledger's leaves (docs/retention.md). Leaves are never erased: the tree
// stays whole, and an erased body leaves its commitment and a recorded
// erasure behind.
type RetentionConfig struct {
	// Rules are tried in order; the first that matches a body decides how
	// long it is kept. A body no rule matches is kept until erased by
	// request.
	Rules []RetentionRule `yaml:"rules"`
	// Minimum is the least time any body is kept: no rule may be shorter.
	// Default 180d.
	Minimum Period `yaml:"minimum"`
	// Interval is the time between two sweeps for bodies that are due.
	// Default 1h.
	Interval time.Duration `yaml:"interval"`
}

// RetentionRule keeps the bodies of events of one type — one body, or all
// of them, of events of one data class, or of any — for Keep after the
// event, then erases them.
type RetentionRule struct {
	Type      string `yaml:"type"`
	Body      string `yaml:"body"`
	DataClass string `yaml:"data_class"`
	Keep      Period `yaml:"keep"`
}

// Period is a length of time as configured: a Go duration ("4320h"), or a
// whole number of days ("180d"), weeks ("26w") or years ("2y", of 365
// days). Text keeps what was written, which erasures record.
type Period struct {
	Duration time.Duration
	Text     string
}

// Defaults of the retention settings.
const (
	DefaultRetentionMinimum  = 180 * 24 * time.Hour
	DefaultRetentionInterval = time.Hour
	maxRetentionRules        = 64
	maxPeriod                = 100 * 365 * 24 * time.Hour
)

func (p Period) String() string {
	if p.Text != "" {
		return p.Text
	}
	return FormatPeriod(p.Duration)
}

// FormatPeriod writes d in the largest unit of days, weeks or years it is
// a whole number of, or as a Go duration.
func FormatPeriod(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d > 0 && d%(365*day) == 0:
		return strconv.FormatInt(int64(d/(365*day)), 10) + "y"
	case d > 0 && d%(7*day) == 0:
		return strconv.FormatInt(int64(d/(7*day)), 10) + "w"
	case d > 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// ParsePeriod reads a Period: "180d", "26w", "2y" or a Go duration.
func ParsePeriod(s string) (Period, error) {
	if len(s) > 32 {
		return Period{}, fmt.Errorf("period %.32q…: too long", s)
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if n := len(s); n > 1 && unit[s[n-1]] != 0 {
		v, err := strconv.ParseUint(s[:n-1], 10, 32)
		if err != nil || s[0] == '+' {
			return Period{}, fmt.Errorf("period %q: want a whole number before %q", s, s[n-1:])
		}
		d := time.Duration(v) * unit[s[n-1]]
		if d > maxPeriod {
			return Period{}, fmt.Errorf("period %q: longer than 100 years", s)
		}
		return Period{Duration: d, Text: s}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Period{}, fmt.Errorf("period %q: want days, weeks or years (180d, 26w, 2y) or a duration (4320h)", s)
	}
	if d > maxPeriod {
		return Period{}, fmt.Errorf("period %q: longer than 100 years", s)
	}
	return Period{Duration: d, Text: s}, nil
}

// UnmarshalYAML reads a Period from a YAML string.
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a period is a string such as 180d", n.Line)
	}
	v, err := ParsePeriod(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

// DefaultRetention is the retention setting when none is made: no rules
// (bodies are kept until erased by request), the default minimum and
// interval.
func DefaultRetention() RetentionConfig {
	return RetentionConfig{Minimum: Period{Duration: DefaultRetentionMinimum}, Interval: DefaultRetentionInterval}
}

var bodyName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate reports the first retention setting that cannot work.
func (c RetentionConfig) Validate() error {
	if c.Minimum.Duration < 24*time.Hour {
		return fmt.Errorf("retention.minimum %s: want at least 1d", c.Minimum)
	}
	if c.Interval < time.Minute || c.Interval > 24*time.Hour {
		return fmt.Errorf("retention.interval %s: want 1m to 24h", c.Interval)
	}
	if len(c.Rules) > maxRetentionRules {
		return fmt.Errorf("retention.rules: %d rules; at most %d", len(c.Rules), maxRetentionRules)
	}
	for i, r := range c.Rules {
		where := fmt.Sprintf("retention.rules[%d]", i)
		if err := r.validate(c.Minimum); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for j, earlier := range c.Rules[:i] {
			if earlier.covers(r) {
				return fmt.Errorf("%s can never apply: retention.rules[%d] matches every body it does, and the first rule that matches decides; put the narrower rule first", where, j)
			}
		}
	}
	return nil
}

func (r RetentionRule) validate(minimum Period) error {
	switch {
	case r.Type == "":
		return fmt.Errorf("type is required: the event type whose bodies the rule keeps, such as action.completed")
	case !ledger.KnownType(r.Type):
		return fmt.Errorf("type %q is not an event type (docs/ledger.md, Types)", r.Type)
	case !strings.HasPrefix(r.Type, ledger.ImportPrefix) && len(event.Bodies(r.Type)) == 0:
		return fmt.Errorf("type %q: its events carry no bodies", r.Type)
	case r.Body != "" && !bodyName.MatchString(r.Body):
		return fmt.Errorf("body %q is not a body name", r.Body)
	case r.Body != "" && !strings.HasPrefix(r.Type, ledger.ImportPrefix) && !slices.Contains(event.Bodies(r.Type), r.Body):
		return fmt.Errorf("body %q: events of type %s carry the bodies %s", r.Body, r.Type, strings.Join(event.Bodies(r.Type), ", "))
	case !validDataClass(r.DataClass):
		return fmt.Errorf("data_class %q: want public, internal, confidential or restricted", r.DataClass)
	case r.Keep.Duration <= 0:
		return fmt.Errorf("keep is required: how long the bodies are kept, such as 180d or 2y")
	case r.Keep.Duration < minimum.Duration:
		return fmt.Errorf("keep %s is shorter than retention.minimum %s", r.Keep, minimum)
	}
	return nil
}

// covers reports whether r matches every body s matches.
func (r RetentionRule) covers(s RetentionRule) bool {
	return r.Type == s.Type && (r.Body == "" || r.Body == s.Body) && (r.DataClass == "" || r.DataClass == s.DataClass)
}
