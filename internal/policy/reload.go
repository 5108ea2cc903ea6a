package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Bundle roles in policy.loaded and policy.rejected events.
const (
	roleActive = event.RoleActive
	roleShadow = event.RoleShadow
)

// Reload loads the configured bundles again (the server calls it on SIGHUP,
// Watch on a file change). A new version is compiled, its sources stored and
// a policy.loaded event recorded before it replaces the old one; a bundle
// that fails any of these is rejected with a policy.rejected event and the
// old one stays active. Reloading an unchanged bundle does nothing.
func (p *Policy) Reload(ctx context.Context) error {
	if p.isClosed.Load() {
		return ErrClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.reloadOne(ctx, roleActive, p.cfg.Dir, p.cfg.Engine, &p.active)
	if p.cfg.ShadowDir != "" {
		err = errors.Join(err, p.reloadOne(ctx, roleShadow, p.cfg.ShadowDir, p.cfg.ShadowEngine, &p.shadow))
	}
	return err
}

type loadedPtr interface {
	Load() *loaded
	Store(*loaded)
}

func (p *Policy) reloadOne(ctx context.Context, role, dir, engine string, slot loadedPtr) error {
	source := dir
	var (
		src Sources
		err error
	)
	if dir == "" {
		if engine == "" {
			engine = EngineRego
		}
		source = "embedded:" + engine
		src, err = DefaultPack(engine)
	} else {
		src, err = LoadDir(dir, engine)
	}
	if err != nil {
		return p.reject(ctx, role, source, engine, "", err)
	}
	version := Version(src)
	if cur := slot.Load(); cur != nil && cur.version == version {
		return nil
	}
	eng, err := Compile(ctx, src)
	if err != nil {
		return p.reject(ctx, role, source, src.Engine, version, err)
	}
	if err := p.sources.Put(ctx, version, src); err != nil {
		return p.reject(ctx, role, source, src.Engine, version, fmt.Errorf("storing sources: %w", err))
	}
	l := &loaded{engine: eng, version: version, name: src.Engine, source: source}
	for _, f := range src.Files {
		l.files = append(l.files, event.PolicyFile{Path: f.Path, SHA256: FileDigest(f.Data), Size: len(f.Data)})
	}
	data, _ := json.Marshal(event.PolicyLoaded{Version: version, Engine: src.Engine, Role: role, Source: source, Files: l.files})
	if err := p.record(ctx, ledger.Event{Type: ledger.TypePolicyLoaded, PolicyVersion: version, Data: data}); err != nil {
		// An unrecorded version must not decide anything.
		return fmt.Errorf("policy %s not activated: recording policy.loaded: %w", version, err)
	}
	slot.Store(l)
	p.log.InfoContext(ctx, "policy loaded", "role", role, logVersion, version, logEngine, src.Engine, logSource, source)
	return nil
}

// reject records a bundle that could not be loaded and returns err.
func (p *Policy) reject(ctx context.Context, role, source, engine, version string, err error) error {
	if !errors.Is(err, ErrCompile) {
		err = fmt.Errorf("%w: %w", ErrCompile, err)
	}
	data, _ := json.Marshal(event.PolicyRejected{Version: version, Engine: engine, Role: role, Source: source, Error: err.Error()})
	if rerr := p.record(ctx, ledger.Event{Type: ledger.TypePolicyRejected, PolicyVersion: version, Data: data}); rerr != nil {
		err = errors.Join(err, fmt.Errorf("recording policy.rejected: %w", rerr))
	}
	kept := ""
	if cur := p.active.Load(); cur != nil {
		kept = cur.version
	}
	p.log.ErrorContext(ctx, "policy bundle rejected", "role", role, logSource, source, logErr, err.Error(), "kept_version", kept)
	return err
}

func (p *Policy) record(ctx context.Context, e ledger.Event) error {
	if p.cfg.Recorder == nil {
		return nil
	}
	e.Time = time.Now().UTC()
	_, err := p.cfg.Recorder.Append(ctx, e)
	return err
}
