package retention

import (
	"context"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// The data class of a body, which rules may name, is its event's:
//
//   - a call's (action.authorized, action.denied) its declared data_class,
//     or its task's when it declares none;
//   - a call's result (action.completed) that of the call it completes;
//   - a step-up request (approval.requested) the class of the call it
//     holds, or its task's;
//   - any other event of a task (task.requested, policy.decided, …) its
//     task's: the highest class of the task's scope;
//   - an event of no task has none, and only rules naming no class match
//     it.

// maxClasses bounds the classes of calls remembered.
const maxClasses = 100_000

func (e *Enforcer) seen(key string) (string, bool) {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	c, ok := e.classes[key]
	return c, ok
}

// maxWalk bounds how far back along a task's chain the class of a call is
// looked for, when its authorization is not among those seen.
const maxWalk = 4096

// ruleFor returns the index of the first rule that matches body name of
// ent, or -1 when none does.
func (e *Enforcer) ruleFor(ctx context.Context, ent ledger.Entry, name string) (int, error) {
	class, known := "", false
	for i, r := range e.rules {
		if r.Type != ent.Event.Type || r.Body != "" && r.Body != name {
			continue
		}
		if r.DataClass == "" {
			return i, nil
		}
		if !known {
			var err error
			if class, err = e.classOf(ctx, ent); err != nil {
				return -1, err
			}
			known = true
		}
		if class == r.DataClass {
			return i, nil
		}
	}
	return -1, nil
}

// note remembers the class of an authorized call, for its result.
func (e *Enforcer) note(ent ledger.Entry) {
	if ent.Event.Type != ledger.TypeActionAuthorized {
		return
	}
	if d, err := event.Read(ent.Event); err == nil {
		if a, ok := d.(event.ActionDecided); ok && a.ActionID != "" {
			e.cmu.Lock()
			if len(e.classes) >= maxClasses {
				clear(e.classes)
			}
			e.classes[ent.Event.TaskID+"/"+a.ActionID] = a.DataClass
			e.cmu.Unlock()
		}
	}
}

// classOf returns the data class of ent's bodies (above).
func (e *Enforcer) classOf(ctx context.Context, ent ledger.Entry) (string, error) {
	d, _ := event.Read(ent.Event)
	own := ""
	switch d := d.(type) {
	case event.ActionDecided:
		own = d.DataClass
	case event.ApprovalRequested:
		own = d.DataClass
	case event.ActionCompleted:
		c, err := e.callClass(ctx, ent, d.ActionID)
		if err != nil {
			return "", err
		}
		own = c
	}
	if own != "" || ent.Event.TaskID == "" {
		return own, nil
	}
	c, _ := e.cfg.Tasks.TaskClass(ent.Event.TaskID)
	return c, nil
}

// callClass returns the declared class of the call actionID that ent
// completes: from the calls seen, else by following the task's chain
// back to the call's authorization.
func (e *Enforcer) callClass(ctx context.Context, ent ledger.Entry, actionID string) (string, error) {
	key := ent.Event.TaskID + "/" + actionID
	if c, ok := e.seen(key); ok {
		return c, nil
	}
	prev := ent.Event.Prev
	for n := 0; prev != nil && n < maxWalk; n++ {
		leaves, err := e.cfg.Store.ReadLeaves(ctx, *prev, *prev+1)
		if err != nil {
			return "", err
		}
		if len(leaves) == 0 {
			break
		}
		p, err := ledger.ParseLeaf(*prev, leaves[0])
		if err != nil {
			return "", err
		}
		if p.Event.Type == ledger.TypeActionAuthorized {
			e.note(p)
			if c, ok := e.seen(key); ok {
				return c, nil
			}
		}
		prev = p.Event.Prev
	}
	return "", nil
}
