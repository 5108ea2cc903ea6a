// Package event defines the data of every event type writ writes to its
// ledger: a Go type for each, such as TaskRequested for task.requested,
// the typed form of the event's "data" member (types of one shape share
// it, as task.completed, task.expired and task.revoked share TaskEnded;
// auth.rejected has three shapes, each a Rejection). The member names are
// the ledger's contract: every leaf commits to them, auditors read them
// with their own code (docs/ledger.md links each type to its fields), and
// writ reads them back at every start, so a name once written is never
// renamed or dropped; a field no longer written stays here, read-only, for
// the events that carry it.
//
// Writers fill these types and encode them with encoding/json. Readers
// decode them with Read, which picks the type by the event's, and switch
// on it:
//
//	data, err := event.Read(ev)
//	switch d := data.(type) {
//	case event.TaskRequested:
//		…
//	}
//
// Decode is the strict form, for checking that data is exactly what writ
// writes: a member the type does not have is an error there. Types lists
// the event types, and Shapes the Go types of each.
package event
