package cli

import (
	"context"
	"errors"
	"fmt"
	stdio "io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/policy/defaultpack"
)

func policyCommand() *command {
	return &command{
		name:    "policy",
		summary: "write, check, test and evaluate policy bundles",
		subs: []*command{
			policyInitCommand(),
			policyVersionCommand(),
			policyCheckCommand(),
			policyEvalCommand(),
			policyTestCommand(),
			policyReplayCommand(),
			policyWhatIfCommand(),
		},
	}
}

// loadBundle reads a bundle directory with a hint on the usual mistakes.
func loadBundle(dir, engine string) (policy.Sources, error) {
	src, err := policy.LoadDir(dir, engine)
	if err != nil {
		if strings.Contains(err.Error(), "both .rego and .cedar") {
			return src, withHint(err, "pass --engine rego or --engine cedar")
		}
		return src, withHint(err, "a bundle is a directory of .rego or .cedar files; 'writ policy init DIR' writes the default pack")
	}
	return src, nil
}

func checkEngine(e string) error {
	switch e {
	case "", policy.EngineRego, policy.EngineCedar:
		return nil
	}
	return &usageError{msg: fmt.Sprintf("--engine %q: want rego or cedar", e), hint: "use --engine rego or --engine cedar"}
}

func policyInitCommand() *command {
	c := &command{name: "init", args: "[--engine rego|cedar] DIR", summary: "write the default policy pack into DIR for editing"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		engine := fs.String("engine", policy.EngineRego, "policy `language`: rego or cedar")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkEngine(*engine); err != nil || *engine == "" {
			return cmpErr(err, &usageError{msg: "--engine is empty", hint: "use --engine rego or --engine cedar"})
		}
		n, err := writePack(*engine, pos[0])
		if err != nil {
			return err
		}
		src, err := policy.LoadDir(pos[0], *engine)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "wrote the default %s pack (%d files) to %s\nversion %s\n", *engine, n, pos[0], policy.Version(src))
		return nil
	}
	return c
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// writePack copies the embedded pack into dir, refusing to overwrite.
func writePack(engine, dir string) (int, error) {
	pack, _ := defaultpack.FS(engine)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n := 0
	err := fs.WalkDir(pack, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(pack, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return withHint(fmt.Errorf("%s already exists", dst), "choose an empty directory; nothing is overwritten")
		}
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		n++
		return err
	})
	return n, err
}

func policyVersionCommand() *command {
	return bundleCommand("version", "print a bundle's version (sha256 over its files and engine)",
		func(ctx context.Context, io IO, src policy.Sources) error {
			fmt.Fprintln(io.Stdout, policy.Version(src))
			return nil
		})
}

func policyCheckCommand() *command {
	return bundleCommand("check", "compile and lint a bundle as the server would load it",
		func(ctx context.Context, io IO, src policy.Sources) error {
			warns, err := policy.Check(ctx, src)
			if err != nil {
				return err
			}
			for _, w := range warns {
				fmt.Fprintf(io.Stdout, "warning: %s\n", w)
			}
			fmt.Fprintf(io.Stdout, "ok: %s bundle %s (%d files, %d warnings)\n", src.Engine, policy.Version(src), len(src.Files), len(warns))
			return nil
		})
}

// bundleCommand is a command that reads the bundle directory it is given,
// in the language --engine names or the one its files are in.
func bundleCommand(name, summary string, run func(ctx context.Context, io IO, src policy.Sources) error) *command {
	c := &command{name: name, args: "[--engine rego|cedar] DIR", summary: summary}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		engine := fs.String("engine", "", "policy `language` (default: detected from the files)")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkEngine(*engine); err != nil {
			return err
		}
		src, err := loadBundle(pos[0], *engine)
		if err != nil {
			return err
		}
		return run(ctx, io, src)
	}
	return c
}

func policyEvalCommand() *command {
	c := &command{name: "eval", args: "--point task|exchange|action|list --input FILE [--policy DIR | --version sha256:… --data-dir DIR]",
		summary: "decide one input document and print the decision as JSON"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		point := fs.String("point", "", "decision `point`: task, exchange, action or list")
		input := fs.String("input", "", "input document `file` (JSON; - reads stdin)")
		cf.stringFlag("policy", "bundle `directory` (default: policy.dir from config, else the embedded default pack)", func(c *config.Config) *string { return &c.Policy.Dir })
		cf.stringFlag("engine", "policy `language`: rego or cedar (default: detected)", func(c *config.Config) *string { return &c.Policy.Engine })
		version := fs.String("version", "", "replay against this stored policy `version` from the data directory instead")
		timeout := fs.Duration("timeout", 0, "evaluation `timeout` (default policy.timeout, 50ms)")
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		p, err := policy.ParsePoint(*point)
		if err != nil {
			return &usageError{msg: "--point: " + err.Error(), hint: "use --point task, exchange, action or list"}
		}
		if *input == "" {
			return &usageError{msg: "missing --input", hint: "pass --input FILE with the input document (see docs/policy.md)"}
		}
		cfg, err := cf.load(io)
		if err != nil {
			return err
		}
		in, err := readInput(io, *input)
		if err != nil {
			return err
		}
		if *timeout <= 0 {
			*timeout = cfg.Policy.Timeout
		}
		var d policy.Decision
		if *version != "" {
			if cf.isSet("policy") {
				return &usageError{msg: "--version and --policy are exclusive", hint: "--version replays a stored version; --policy evaluates a directory"}
			}
			store, err := policy.NewDirStore(filepath.Join(cfg.DataDir, "policies"))
			if err != nil {
				return err
			}
			d, err = policy.Replay(ctx, store, *version, p, in, *timeout)
			if errors.Is(err, policy.ErrNotFound) {
				return withHint(err, "versions are stored when a server loads them; check --data-dir")
			}
			if err != nil {
				return err
			}
		} else {
			src, err := bundleFor(cfg.Policy)
			if err != nil {
				return err
			}
			d, err = policy.EvaluateSources(ctx, src, p, in, *timeout)
			if err != nil {
				return err
			}
		}
		return printJSONEscaped(io, d)
	}
	return c
}

// bundleFor returns the configured bundle, or the embedded default pack.
func bundleFor(pc config.PolicyConfig) (policy.Sources, error) {
	if pc.Dir != "" {
		return loadBundle(pc.Dir, pc.Engine)
	}
	engine := pc.Engine
	if engine == "" {
		engine = policy.EngineRego
	}
	return policy.DefaultPack(engine)
}

func readInput(io IO, name string) (*policy.Input, error) {
	var (
		data []byte
		err  error
	)
	if name == "-" {
		data, err = stdio.ReadAll(stdio.LimitReader(io.Stdin, policy.MaxInputBytes+1))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	in, err := policy.ParseInput(data)
	if err != nil {
		return nil, withHint(err, "the input document is described in docs/policy.md")
	}
	return in, nil
}

func policyTestCommand() *command {
	c := &command{name: "test", args: "[--engine rego|cedar] [-o table|json] DIR",
		summary: "run a bundle's own tests (Rego *_test.rego and tests.json cases)"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		engine := fs.String("engine", "", "policy `language` (default: detected from the files)")
		out := fs.String("o", "table", "output `format`: table or json")
		verbose := fs.Bool("v", false, "list passing tests too")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		if err := checkEngine(*engine); err != nil {
			return err
		}
		if err := checkOutput(*out); err != nil {
			return err
		}
		src, err := loadBundle(pos[0], *engine)
		if err != nil {
			return err
		}
		start := time.Now()
		results, err := policy.RunTests(ctx, src)
		if err != nil {
			return err
		}
		failed := 0
		for _, r := range results {
			if !r.Pass {
				failed++
			}
		}
		if *out == "json" {
			if err := printJSONEscaped(io, struct {
				Passed  int                 `json:"passed"`
				Failed  int                 `json:"failed"`
				Results []policy.TestResult `json:"results"`
			}{len(results) - failed, failed, results}); err != nil {
				return err
			}
		} else {
			for _, r := range results {
				switch {
				case !r.Pass:
					fmt.Fprintf(io.Stdout, "FAIL %s\n     %s\n", r.Name, strings.ReplaceAll(r.Message, "\n", "\n     "))
				case *verbose:
					fmt.Fprintf(io.Stdout, "PASS %s\n", r.Name)
				}
			}
			fmt.Fprintf(io.Stdout, "%d/%d passed (%s, %s)\n", len(results)-failed, len(results), src.Engine, time.Since(start).Round(time.Millisecond))
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d policy tests failed", failed, len(results))
		}
		return nil
	}
	return c
}
