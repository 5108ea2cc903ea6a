package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the bundle when its files change, after Debounce of quiet,
// until ctx ends or the Policy is closed. It returns once watching has
// started; failures of later reloads are recorded and logged, and the old
// bundle stays active. Without a bundle directory there is nothing to watch
// and Watch returns nil.
func (p *Policy) Watch(ctx context.Context) error {
	var dirs []string
	for _, d := range []string{p.cfg.Dir, p.cfg.ShadowDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching policy bundle: %w", err)
	}
	for _, d := range dirs {
		if err := addTree(w, d); err != nil {
			w.Close()
			return fmt.Errorf("watching policy bundle %s: %w", d, err)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer w.Close()
		p.watchLoop(ctx, w)
	}()
	return nil
}

// addTree watches dir and its subdirectories (fsnotify is not recursive).
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(path)
		}
		return nil
	})
}

func (p *Policy) watchLoop(ctx context.Context, w *fsnotify.Watcher) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.closed:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				// A new subdirectory must be watched too; errors surface on reload.
				_ = addTree(w, ev.Name)
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) || strings.HasSuffix(ev.Name, "~") {
				continue
			}
			timer.Reset(p.cfg.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			p.log.WarnContext(ctx, "policy watcher", logErr, err.Error())
		case <-timer.C:
			if err := p.Reload(ctx); err != nil && !errors.Is(err, ErrClosed) {
				p.log.WarnContext(ctx, "policy reload failed; previous version stays active", logErr, err.Error(), logVersion, p.Version())
			}
		}
	}
}
