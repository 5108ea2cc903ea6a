package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

func TestVersionLayout(t *testing.T) {
	// Recompute the documented byte layout by hand for a two-file bundle.
	src := Sources{Engine: "cedar", Files: []File{{"b.cedar", []byte("B")}, {"a.json", []byte("[]")}}}
	var buf []byte
	buf = append(buf, "writ-policy-version-v1\x00"...)
	lp := func(s string) {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	lp("cedar")
	buf = binary.BigEndian.AppendUint64(buf, 2)
	lp("a.json")
	lp("[]")
	lp("b.cedar")
	lp("B")
	sum := sha256.Sum256(buf)
	if got, want := Version(src), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Version = %s, want %s", got, want)
	}
}

func TestVersionDistinguishes(t *testing.T) {
	base := Sources{Engine: "rego", Files: []File{{"a.rego", []byte("package x")}}}
	variants := map[string]Sources{
		"engine":         {Engine: "cedar", Files: base.Files},
		"content":        {Engine: "rego", Files: []File{{"a.rego", []byte("package y")}}},
		"path":           {Engine: "rego", Files: []File{{"b.rego", []byte("package x")}}},
		"path/content":   {Engine: "rego", Files: []File{{"a.regop", []byte("ackage x")}}},
		"split file":     {Engine: "rego", Files: []File{{"a.rego", []byte("package")}, {"x", nil}}},
		"extra empty":    {Engine: "rego", Files: []File{{"a.rego", []byte("package x")}, {"z", nil}}},
		"no files":       {Engine: "rego"},
		"engine in path": {Engine: "", Files: []File{{"regoa.rego", []byte("package x")}}},
	}
	v0 := Version(base)
	seen := map[string]string{v0: "base"}
	for name, s := range variants {
		v := Version(s)
		if other, dup := seen[v]; dup {
			t.Errorf("%s and %s share version %s", name, other, v)
		}
		seen[v] = name
	}
	// Order of files does not matter.
	two := Sources{Engine: "rego", Files: []File{{"b", []byte("1")}, {"a", []byte("2")}}}
	swapped := Sources{Engine: "rego", Files: []File{{"a", []byte("2")}, {"b", []byte("1")}}}
	if Version(two) != Version(swapped) {
		t.Error("file order changed the version")
	}
}

func FuzzVersionInjective(f *testing.F) {
	f.Add("a", "bc", "ab", "c")
	f.Add("x/y", "", "x", "/y")
	f.Fuzz(func(t *testing.T, p1, d1, p2, d2 string) {
		a := Sources{Engine: "rego", Files: []File{{p1, []byte(d1)}}}
		b := Sources{Engine: "rego", Files: []File{{p2, []byte(d2)}}}
		if (p1 != p2 || d1 != d2) && Version(a) == Version(b) {
			t.Fatalf("collision: %q=%q and %q=%q", p1, d1, p2, d2)
		}
	})
}

func TestParseVersion(t *testing.T) {
	good := Version(Sources{Engine: "rego"})
	if _, err := parseVersion(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "sha256:", good[7:], "sha1:" + good[7:], good[:len(good)-1], good[:len(good)-1] + "G", "sha256:" + "A" + good[8:]} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
}
