package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/identity"
)

// exitCodeError carries the exit status of the command writ exec ran, so
// that writ exits with it.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string {
	return fmt.Sprintf("the command exited with status %d", e.code)
}

// ExitCode is the status writ should exit with.
func (e *exitCodeError) ExitCode() int { return e.code }

func execCommand() *command {
	c := &command{name: "exec",
		args:    "--intent TEXT --tools … --resources … --operations … --data-class C --environments … (--agent-svid FILE | --agent ID --dev-data-dir DIR) [--wait 1h] -- <command> [args]",
		summary: "run an agent command under a task: open it, wait for approval, hand the command a task token, complete the task when it exits",
	}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "requester")
		sf := addScopeFlags(fs)
		svidFile := fs.String("agent-svid", "", "the agent's JWT-SVID (or OIDC token) `file`, read again at each token refresh")
		devDir := fs.String("dev-data-dir", "", "mint the agent's JWT-SVID with the dev issuer in `dir` (a dev server's data directory)")
		wait := fs.Duration("wait", time.Hour, "longest wait for approval")
		pos, err := parseFlags(fs, args)
		if err != nil {
			return err
		}
		if len(pos) == 0 {
			return &usageError{msg: "missing the command to run", hint: "put it after --: writ exec [flags] -- ./agent --flag"}
		}
		svid, agent, err := svidSource(*svidFile, *devDir, sf.agent)
		if err != nil {
			return err
		}
		req, err := sf.request(agent)
		if err != nil {
			return err
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		x := &execRun{io: io, cl: cl, svid: svid, argv: pos, wait: *wait}
		return x.run(ctx, req)
	}
	return c
}

// svidSource returns a function that yields a current identity token for
// the agent, and the agent's ID (from --agent, or the token's subject).
func svidSource(file, devDir, agent string) (func() (string, error), string, error) {
	switch {
	case file != "" && devDir != "":
		return nil, "", &usageError{msg: "--agent-svid and --dev-data-dir both given", hint: "pass one"}
	case file != "":
		get := func() (string, error) { return readSVID(file, "") }
		tok, err := get()
		if err != nil {
			return nil, "", err
		}
		if agent == "" {
			if agent, err = jwtSubject(tok); err != nil {
				return nil, "", withHint(fmt.Errorf("--agent-svid %s: %w", file, err), "pass --agent ID")
			}
		}
		return get, agent, nil
	case devDir != "":
		if agent == "" {
			return nil, "", &usageError{msg: "--dev-data-dir needs --agent", hint: "name the agent: --agent spiffe://" + identity.DevTrustDomain + "/agent/NAME"}
		}
		get := func() (string, error) {
			return identity.DevSVID(devDir, agent, []string{"writ"}, 10*time.Minute, time.Now())
		}
		if _, err := get(); err != nil {
			return nil, "", devHint(err)
		}
		return get, agent, nil
	}
	return nil, "", &usageError{msg: "missing --agent-svid or --dev-data-dir",
		hint: "the agent proves itself with its JWT-SVID: --agent-svid FILE (or, with a dev server, --agent ID --dev-data-dir DIR)"}
}

// jwtSubject reads the sub claim of a JWT without verifying it: only to
// name the agent on the task. The server verifies the token at exchange,
// and only the agent named on the task gets a task token.
func jwtSubject(tok string) (string, error) {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("JWT payload is not base64url")
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("JWT payload is not a JSON object")
	}
	if claims.Sub == "" {
		return "", errors.New("JWT has no sub claim")
	}
	return claims.Sub, nil
}

// execRun is one writ exec: the task, its token and the child process.
type execRun struct {
	io   IO
	cl   *client.Client // requester
	svid func() (string, error)
	argv []string
	wait time.Duration

	taskID      string
	tokenFile   string
	mu          sync.Mutex // guards token writes
	interrupted atomic.Bool
}

func (x *execRun) logf(format string, a ...any) {
	fmt.Fprintf(x.io.Stderr, "writ: "+format+"\n", a...)
}

// run opens the task and sees it through; whatever happens after the task
// exists, it ends: completed when the command ran and exited, revoked
// otherwise.
func (x *execRun) run(ctx context.Context, req api.OpenTask) error {
	// Take signals from the start, so that an interrupt while waiting for
	// approval revokes the pending task rather than leaving it behind.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)

	// An interrupt does not cut the open short: a task the server opened
	// must be known here, so that it is revoked rather than left behind.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	opened, err := x.cl.OpenTask(octx, req)
	cancel()
	if err != nil {
		return apiError(err, x.cl.BaseURL())
	}
	x.taskID = opened.TaskID
	x.logf("opened task %s (%s)", opened.TaskID, opened.State)
	if opened.State == api.StateDenied {
		return fmt.Errorf("task %s denied: %s", opened.TaskID, strings.Join(opened.Reasons, "; "))
	}
	ranCommand := false
	var runErr error
	defer func() {
		x.end(ctx, ranCommand && runErr == nil)
	}()
	if ctx.Err() != nil {
		x.interrupted.Store(true)
		runErr = errors.New("interrupted before the command started")
		return runErr
	}
	if opened.State == api.StatePendingApproval {
		if runErr = x.awaitApproval(ctx, sigc, opened); runErr != nil {
			return runErr
		}
	}
	tok, err := x.exchange(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted before the command started")
			x.interrupted.Store(true)
		}
		runErr = err
		return err
	}
	dir, err := os.MkdirTemp("", "writ-exec-")
	if err != nil {
		runErr = err
		return err
	}
	defer os.RemoveAll(dir)
	x.tokenFile = filepath.Join(dir, "token")
	if err := x.writeToken(tok.AccessToken); err != nil {
		runErr = err
		return err
	}
	ranCommand = true
	code, err := x.runCommand(ctx, sigc, tok)
	if err != nil {
		runErr = err
		return err
	}
	if code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// awaitApproval polls the task with backoff until it leaves
// pending_approval, the wait runs out, or a signal comes.
func (x *execRun) awaitApproval(ctx context.Context, sigc <-chan os.Signal, opened api.TaskOpened) error {
	x.logf("task %s needs %d approval(s): %s", opened.TaskID, max(opened.ApprovalsRequired, 1), strings.Join(opened.Reasons, "; "))
	x.logf("waiting; an approver runs: writ approve %s", opened.TaskID)
	deadline := time.Now().Add(x.wait)
	delay := 200 * time.Millisecond
	lastNote := time.Now()
	for {
		select {
		case s := <-sigc:
			x.interrupted.Store(true)
			return fmt.Errorf("interrupted by %s while waiting for approval", s)
		case <-ctx.Done():
			x.interrupted.Store(true)
			return errors.New("interrupted while waiting for approval")
		case <-time.After(delay):
		}
		t, err := x.cl.GetTask(ctx, opened.TaskID)
		if err != nil {
			return apiError(err, x.cl.BaseURL())
		}
		switch t.State {
		case api.StateActive:
			for _, a := range t.Approvals {
				x.logf("approved by %s: %s", a.Approver, a.Reason)
			}
			return nil
		case api.StatePendingApproval:
		default:
			return fmt.Errorf("task %s is %s: %s", t.TaskID, t.State, strings.Join(t.Reasons, "; "))
		}
		if time.Now().After(deadline) {
			return withHint(fmt.Errorf("no approval for task %s within %s", opened.TaskID, x.wait), "raise --wait, or ask an approver to run 'writ approvals'")
		}
		if time.Since(lastNote) > 30*time.Second {
			x.logf("still waiting for approval of %s (%d of %d given)", t.TaskID, len(t.Approvals), max(t.ApprovalsRequired, 1))
			lastNote = time.Now()
		}
		delay = min(delay*3/2, 5*time.Second)
	}
}

// exchange trades a fresh identity token for a task token.
func (x *execRun) exchange(ctx context.Context) (api.TokenResponse, error) {
	svid, err := x.svid()
	if err != nil {
		return api.TokenResponse{}, fmt.Errorf("agent identity: %w", err)
	}
	tok, err := x.cl.ExchangeToken(ctx, svid, x.taskID)
	if err != nil {
		return tok, exchangeError(err, x.cl.BaseURL(), x.taskID)
	}
	return tok, nil
}

// writeToken replaces the token file atomically, readable by its owner only.
func (x *execRun) writeToken(tok string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	tmp := x.tokenFile + ".new"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, x.tokenFile)
}

// runCommand starts the command with the task in its environment, keeps the
// token file current, forwards signals, and returns the exit status.
func (x *execRun) runCommand(ctx context.Context, sigc <-chan os.Signal, tok api.TokenResponse) (int, error) {
	cmd := exec.Command(x.argv[0], x.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = x.io.Stdin, x.io.Stdout, x.io.Stderr
	cmd.Env = childEnv(os.Environ(), map[string]string{
		"WRIT_TOKEN": tok.AccessToken, "WRIT_TOKEN_FILE": x.tokenFile,
		"WRIT_TASK": x.taskID, "WRIT_URL": x.cl.BaseURL(),
	})
	if err := cmd.Start(); err != nil {
		return 0, withHint(fmt.Errorf("starting %s: %w", x.argv[0], err), "the command comes after --: writ exec [flags] -- ./agent")
	}
	x.logf("running %s under task %s (token valid %ds, renewed in $WRIT_TOKEN_FILE before it expires)", x.argv[0], x.taskID, tok.ExpiresIn)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	refreshCtx, stopRefresh := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRefresh()
	go x.refresh(refreshCtx, tok.ExpiresIn)
	var err error
wait:
	for {
		select {
		case s := <-sigc:
			x.logf("%s: passing it to the command; the task will be revoked", s)
			x.interrupted.Store(true)
			cmd.Process.Signal(s)
		case err = <-done:
			break wait
		}
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// refresh exchanges a new task token before the current one expires, for as
// long as the command runs, and writes it to the token file.
func (x *execRun) refresh(ctx context.Context, expiresIn int) {
	for {
		life := time.Duration(expiresIn) * time.Second
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(life*2/3, time.Second)):
		}
		tok, err := x.exchange(ctx)
		var ce *client.Error
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &ce) && ce.Body.Error == "invalid_grant":
			x.logf("token refresh refused, the task has ended or is not this agent's: %v", err)
			return
		case err != nil:
			x.logf("token refresh failed, retrying: %v", err)
			expiresIn = 15 // retry in about 10s
			continue
		}
		if err := x.writeToken(tok.AccessToken); err != nil {
			x.logf("writing the refreshed token: %v", err)
		}
		expiresIn = tok.ExpiresIn
	}
}

// childEnv returns env with the given variables set, replacing any
// inherited value (so a requester's WRIT_TOKEN never reaches the agent).
func childEnv(env []string, set map[string]string) []string {
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range []string{"WRIT_TOKEN", "WRIT_TOKEN_FILE", "WRIT_TASK", "WRIT_URL"} {
		if v, ok := set[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// end completes the task when the command ran to its end, and revokes it
// otherwise (an interrupt, a failed start, no approval). Either way every
// credential of the task is revoked.
func (x *execRun) end(ctx context.Context, finished bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if finished && !x.interrupted.Load() {
		if _, err := x.cl.Complete(ctx, x.taskID); err != nil {
			x.logf("completing task %s failed: %v; revoke it with: writ task revoke %s --reason …", x.taskID, err, x.taskID)
			return
		}
		x.logf("task %s completed; its credentials are revoked", x.taskID)
		return
	}
	reason := "writ exec: the command did not run to completion"
	if x.interrupted.Load() {
		reason = "writ exec: interrupted"
	}
	t, err := x.cl.Revoke(ctx, x.taskID, reason)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == 409 {
		return // already ended: denied, expired or revoked
	}
	if err != nil {
		x.logf("revoking task %s failed: %v; revoke it with: writ task revoke %s --reason …", x.taskID, err, x.taskID)
		return
	}
	x.logf("task %s %s; its credentials are revoked", x.taskID, t.State)
}
