package refusal

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docTable returns the rows of the markdown table under the heading
// "## "+section in docs/errors.md, each as its trimmed cells.
func docTable(t *testing.T, section string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## "+section+"\n")
	if !ok {
		t.Fatalf("docs/errors.md has no section %q", section)
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	var rows [][]string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		t.Fatalf("section %q has no table", section)
	}
	return rows[1:] // without the header
}

func kindNamed(name string) (Kind, bool) {
	for k := Invalid; k <= Unavailable; k++ {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

// TestDocumentedKinds: docs/errors.md lists every kind with the status
// HTTPStatus answers it with, and every code's status is its kind's.
func TestDocumentedKinds(t *testing.T) {
	seen := map[Kind]bool{}
	for _, row := range docTable(t, "Kinds") {
		k, ok := kindNamed(row[0])
		if !ok {
			t.Errorf("docs/errors.md names kind %q, which does not exist", row[0])
			continue
		}
		if row[1] != strconv.Itoa(k.HTTPStatus()) {
			t.Errorf("docs/errors.md: kind %s is %s, but HTTPStatus answers %d", k, row[1], k.HTTPStatus())
		}
		seen[k] = true
	}
	for k := Invalid; k <= Unavailable; k++ {
		if !seen[k] {
			t.Errorf("docs/errors.md does not list kind %s", k)
		}
	}
	for _, row := range docTable(t, "Codes") {
		if row[1] == "-" {
			continue // the token endpoint's, by RFC 6749
		}
		k, ok := kindNamed(row[1])
		if !ok {
			t.Errorf("docs/errors.md: code %s has kind %q, which does not exist", row[0], row[1])
		} else if row[2] != strconv.Itoa(k.HTTPStatus()) {
			t.Errorf("docs/errors.md: code %s (%s) is %s, but its kind is answered %d", row[0], k, row[2], k.HTTPStatus())
		}
	}
}

// TestEveryCodeDocumented: every code an HTTP edge answers with a literal
// kind and code, and every refusal code of the task service, is in
// docs/errors.md with that kind.
func TestEveryCodeDocumented(t *testing.T) {
	documented := map[string]bool{} // "kind code"
	for _, row := range docTable(t, "Codes") {
		for _, code := range strings.Split(row[0], ",") {
			documented[row[1]+" "+strings.Trim(strings.TrimSpace(code), "`")] = true
		}
	}
	edge := regexp.MustCompile(`refusal\.([A-Z]\w+), "([a-z_]+)"`)
	taskRefusal := regexp.MustCompile(`newErr\(Err(Invalid|NotFound|Forbidden|Conflict), "([a-z_]+)"`)
	credRefusal := regexp.MustCompile(`credentialRefusal\("([a-z_]+)"`)
	goKinds := map[string]Kind{}
	for k := Invalid; k <= Unavailable; k++ {
		goKinds[goName(k)] = k
	}
	// Codes the task service refuses a credential exchange with: the
	// token endpoint answers them as invalid_grant, and they are recorded
	// as auth.rejected reasons (docs/credentials.md).
	exchangeOnly := map[string]bool{"agent_mismatch": true, "jti_reused": true}
	for _, dir := range []string{"server", "gateway", "proxy", "httpjson", "abuse", "task"} {
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			check := func(k Kind, code string) {
				if !documented[k.String()+" "+code] && !exchangeOnly[code] {
					t.Errorf("%s answers %s %s, which docs/errors.md does not list", f, k, code)
				}
			}
			for _, m := range edge.FindAllStringSubmatch(src, -1) {
				if k, ok := goKinds[m[1]]; ok {
					check(k, m[2])
				}
			}
			for _, m := range taskRefusal.FindAllStringSubmatch(src, -1) {
				check(goKinds[m[1]], m[2])
			}
			for _, m := range credRefusal.FindAllStringSubmatch(src, -1) {
				check(Unauthenticated, m[1])
			}
		}
	}
}

// goName is the Go name of a kind's constant ("NotFound").
func goName(k Kind) string {
	var b strings.Builder
	for _, w := range strings.Split(k.String(), "_") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
