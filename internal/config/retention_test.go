package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRetentionValidate(t *testing.T) {
	day := 24 * time.Hour
	p := func(s string) Period {
		v, err := ParsePeriod(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := DefaultRetention()
	tests := []struct {
		name  string
		rules []RetentionRule
		min   string
		want  string
	}{
		{"none", nil, "", ""},
		{"the documented rules", []RetentionRule{
			{Type: "action.completed", Body: "output", DataClass: "confidential", Keep: p("180d")},
			{Type: "action.completed", Keep: p("1y")},
			{Type: "task.requested", Body: "intent", Keep: p("2y")},
		}, "", ""},
		{"an import type", []RetentionRule{{Type: "import.siem.alert", Body: "raw", Keep: p("400d")}}, "", ""},
		{"shorter than the minimum", []RetentionRule{{Type: "action.completed", Keep: p("30d")}}, "", "shorter than retention.minimum 180d"},
		{"a lower minimum", []RetentionRule{{Type: "action.completed", Keep: p("30d")}}, "30d", ""},
		{"a minimum under a day", nil, "12h", "want at least 1d"},
		{"no type", []RetentionRule{{Keep: p("1y")}}, "", "type is required"},
		{"no keep", []RetentionRule{{Type: "action.completed"}}, "", "keep is required"},
		{"an unknown type", []RetentionRule{{Type: "action.done", Keep: p("1y")}}, "", "not an event type"},
		{"a type without bodies", []RetentionRule{{Type: "task.completed", Keep: p("1y")}}, "", "carry no bodies"},
		{"a body the type lacks", []RetentionRule{{Type: "action.completed", Body: "intent", Keep: p("1y")}}, "", "carry the bodies output"},
		{"an unknown class", []RetentionRule{{Type: "action.completed", DataClass: "secret", Keep: p("1y")}}, "", "data_class"},
		{"shadowed by a broader rule", []RetentionRule{
			{Type: "action.completed", Keep: p("1y")},
			{Type: "action.completed", Body: "output", DataClass: "confidential", Keep: p("180d")},
		}, "", "retention.rules[1] can never apply"},
		{"the same rule twice", []RetentionRule{
			{Type: "task.requested", Keep: p("1y")}, {Type: "task.requested", Keep: p("2y")},
		}, "", "can never apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Rules = tt.rules
			if tt.min != "" {
				c.Minimum = p(tt.min)
			}
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
	if base.Minimum.Duration != 180*day || base.Minimum.String() != "26w" && base.Minimum.String() != "180d" {
		t.Errorf("default minimum %v", base.Minimum)
	}
}

func TestParsePeriod(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{"180d": 180 * day, "26w": 182 * day, "2y": 730 * day, "4320h": 180 * day, "90m": 90 * time.Minute} {
		got, err := ParsePeriod(in)
		if err != nil || got.Duration != want || got.String() != in {
			t.Errorf("ParsePeriod(%q) = %v %q, %v; want %v", in, got.Duration, got.String(), err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "+1d", "1.5d", "1x", "999999999999y", "101y", "1e3d"} {
		if _, err := ParsePeriod(in); err == nil {
			t.Errorf("ParsePeriod(%q) succeeded", in)
		}
	}
}

func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"180d", "2y", "26w", "4320h", "1h30m", "-1d", "0d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		if p.Duration > maxPeriod || p.Text != s {
			t.Fatalf("ParsePeriod(%q) = %+v", s, p)
		}
		again, err := ParsePeriod(p.String())
		if err != nil || again.Duration != p.Duration {
			t.Fatalf("ParsePeriod(%q) = %+v, but its text reads back as %+v, %v", s, p, again, err)
		}
	})
}

// TestRetentionDocParses loads the example of docs/retention.md, which
// must be a valid configuration, so that the page cannot drift from the
// settings.
func TestRetentionDocParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "retention.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/retention.md has no yaml example")
	}
	c, err := Load(writeYAML(t, block), nil)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if len(c.Retention.Rules) != 3 || c.Retention.Rules[0].Keep.String() != "180d" {
		t.Errorf("the example's rules: %+v", c.Retention.Rules)
	}
}
