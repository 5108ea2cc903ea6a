package credential

import (
	"sync"
	"time"
)

// Revocations is the set of revoked access tokens and tasks that Verify
// consults on every call. It is in memory and concurrent-safe; the task
// service owns the durable record (credential.revoked and task.* events),
// fills the set at start with Load, and calls RevokeJTI or RevokeTask as it
// records each revocation.
//
// Entries are kept only as long as they matter: a revoked jti until its
// token's exp has passed (plus ClockSkew); a revoked task for the issuer's
// MaxTTL (plus ClockSkew) after it was revoked, by which time every token
// issued for it before the revocation has expired. Expired entries are
// pruned during writes, at most once a minute.
type Revocations struct {
	mu        sync.RWMutex
	jtis      map[string]time.Time // jti -> forget after
	tasks     map[string]time.Time // task id -> forget after
	retain    time.Duration        // how long a task revocation is kept
	now       func() time.Time
	lastPrune time.Time
}

// RevokedJTI is one revoked token, as the task service stores it.
type RevokedJTI struct {
	JTI    string
	Expiry time.Time // the token's exp
}

func newRevocations(retain time.Duration, now func() time.Time) *Revocations {
	return &Revocations{
		jtis: make(map[string]time.Time), tasks: make(map[string]time.Time),
		retain: retain, now: now,
	}
}

// RevokeJTI revokes the single token jti whose exp is exp.
func (r *Revocations) RevokeJTI(jti string, exp time.Time) {
	if jti == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(r.now(), false)
	r.addJTILocked(jti, exp)
}

// RevokeTask makes every existing token of task taskID fail: the task
// service calls it when the task completes, expires or is revoked, and for
// every descendant task (child tokens name their own task, not the parent).
// It does not stop Issue from minting new tokens for the task; the task
// service must refuse the exchange for a task that is not active.
func (r *Revocations) RevokeTask(taskID string) {
	if taskID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.pruneLocked(now, false)
	r.tasks[taskID] = now.Add(r.retain)
}

// Load adds the revocations recorded in the task service's store, at start.
// tasks are treated as revoked now, so they are kept for a full MaxTTL: pass
// every task that ended within MaxTTL (passing older ones is harmless).
func (r *Revocations) Load(jtis []RevokedJTI, tasks []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, j := range jtis {
		r.addJTILocked(j.JTI, j.Expiry)
	}
	for _, t := range tasks {
		r.tasks[t] = now.Add(r.retain)
	}
	r.pruneLocked(now, true)
}

func (r *Revocations) addJTILocked(jti string, exp time.Time) {
	until := exp.Add(ClockSkew)
	if old, ok := r.jtis[jti]; !ok || until.After(old) {
		r.jtis[jti] = until
	}
}

// IsRevoked reports whether tok, or its task, has been revoked. It takes a
// read lock and does two map lookups: no allocation.
func (r *Revocations) IsRevoked(tok *Token) bool {
	r.mu.RLock()
	_, byJTI := r.jtis[tok.JTI]
	_, byTask := r.tasks[tok.TaskID]
	r.mu.RUnlock()
	return byJTI || byTask
}

// Len is the number of revoked jtis and tasks currently held, for metrics.
func (r *Revocations) Len() (jtis, tasks int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis), len(r.tasks)
}

// pruneLocked drops entries whose tokens can no longer verify anyway.
func (r *Revocations) pruneLocked(now time.Time, force bool) {
	if !force && now.Sub(r.lastPrune) < time.Minute {
		return
	}
	r.lastPrune = now
	for k, until := range r.jtis {
		if now.After(until) {
			delete(r.jtis, k)
		}
	}
	for k, until := range r.tasks {
		if now.After(until) {
			delete(r.tasks, k)
		}
	}
}
