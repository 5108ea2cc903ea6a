package console

import (
	"fmt"
	"strings"

	"github.com/writhq/writ/internal/policy"
)

// maxDiffLines bounds the lines of one file compared line by line; larger
// files are reported as changed without a line diff.
const maxDiffLines = 2000

// fileDiff is the difference of one file between two policy versions.
type fileDiff struct {
	Path     string
	Status   string // added, removed, changed, same
	Lines    []diffLine
	TooLarge bool
}

// diffLine is one line of a unified-style diff: Op is ' ', '+' or '-'.
type diffLine struct {
	Op   string
	Text string
}

// diffSources compares the files of two versions, by path.
func diffSources(a, b policy.Sources) []fileDiff {
	old := map[string]string{}
	for _, f := range a.Files {
		old[f.Path] = string(f.Data)
	}
	seen := map[string]bool{}
	var out []fileDiff
	for _, f := range b.Files {
		seen[f.Path] = true
		prev, ok := old[f.Path]
		switch {
		case !ok:
			out = append(out, lineDiff(f.Path, "added", "", string(f.Data)))
		case prev == string(f.Data):
			out = append(out, fileDiff{Path: f.Path, Status: "same"})
		default:
			out = append(out, lineDiff(f.Path, "changed", prev, string(f.Data)))
		}
	}
	for _, f := range a.Files {
		if !seen[f.Path] {
			out = append(out, lineDiff(f.Path, "removed", string(f.Data), ""))
		}
	}
	if a.Engine != b.Engine {
		out = append([]fileDiff{{Path: "(engine)", Status: "changed",
			Lines: []diffLine{{"-", a.Engine}, {"+", b.Engine}}}}, out...)
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineDiff computes a line diff by longest common subsequence.
func lineDiff(path, status, a, b string) fileDiff {
	x, y := splitLines(a), splitLines(b)
	d := fileDiff{Path: path, Status: status}
	if len(x) > maxDiffLines || len(y) > maxDiffLines {
		d.TooLarge = true
		return d
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			d.Lines = append(d.Lines, diffLine{" ", x[i]})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			d.Lines = append(d.Lines, diffLine{"+", y[j]})
			j++
		default:
			d.Lines = append(d.Lines, diffLine{"-", x[i]})
			i++
		}
	}
	d.Lines = compact(d.Lines, diffContext)
	return d
}

// diffContext is the number of unchanged lines kept around each change.
const diffContext = 3

// compact replaces runs of unchanged lines further than context from any
// change by one marker line (Op "…").
func compact(lines []diffLine, context int) []diffLine {
	keep := make([]bool, len(lines))
	for i, l := range lines {
		if l.Op == " " {
			continue
		}
		for j := max(0, i-context); j <= min(len(lines)-1, i+context); j++ {
			keep[j] = true
		}
	}
	var out []diffLine
	for i := 0; i < len(lines); {
		if keep[i] {
			out = append(out, lines[i])
			i++
			continue
		}
		j := i
		for j < len(lines) && !keep[j] {
			j++
		}
		out = append(out, diffLine{"…", fmt.Sprintf("%d unchanged lines", j-i)})
		i = j
	}
	return out
}
