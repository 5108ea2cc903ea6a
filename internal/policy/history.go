package policy

// HistoryVersion is the version of the history object (Input.History). Like
// InputVersion it changes only when a field is renamed or its meaning
// changes; fields are added freely.
const HistoryVersion = 1

// History is what writ recorded of a task and its agent before the call
// being decided: at the action and list points, computed by writ from the
// ledger's events (never taken from the caller), from counters kept as the
// events are applied. Counts are of calls decided at the action point:
// allowed is action.authorized, denied is action.denied (a step-up asked
// for included). Windows are taken at request.time over the events' own
// times.
type History struct {
	Version int `json:"version"`
	// Task is the task's own calls.
	Task TaskHistory `json:"task"`
	// Tool and Operation are the task's calls of action.tool and of
	// action.operation.
	Tool      Calls `json:"tool"`
	Operation Calls `json:"operation"`
	// Agent is the agent's calls across all its tasks.
	Agent AgentHistory `json:"agent"`
	// Resources is what the task's allowed calls reached.
	Resources Reach `json:"resources"`
	// Approvals are the task's step-up approvals.
	Approvals Approvals `json:"approvals"`
}

// Calls counts calls. InFlight are the allowed ones whose result is not
// recorded yet.
type Calls struct {
	Allowed  int64 `json:"allowed"`
	Denied   int64 `json:"denied"`
	InFlight int64 `json:"in_flight"`
}

// Window counts the calls of a sliding window: Calls is Allowed + Denied.
type Window struct {
	Calls   int64 `json:"calls"`
	Allowed int64 `json:"allowed"`
	Denied  int64 `json:"denied"`
}

// TaskHistory is a task's calls since it began.
type TaskHistory struct {
	Calls
	// Tools and Operations count the distinct tools and operations the
	// task's calls named.
	Tools      int64 `json:"tools"`
	Operations int64 `json:"operations"`
	// MaxDataClass is the highest data class of a call allowed under the
	// task or a task it was delegated from (a call that declares none
	// counts at its task's ceiling); "" and level -1 when none was.
	MaxDataClass      string `json:"max_data_class"`
	MaxDataClassLevel int    `json:"max_data_class_level"`
	// LastMinute counts the calls of the current second and the 59 before
	// it; LastHour those of the current minute and the 59 before it.
	LastMinute Window `json:"last_minute"`
	LastHour   Window `json:"last_hour"`
}

// AgentHistory is an agent's calls across its tasks, over the windows of
// TaskHistory.
type AgentHistory struct {
	LastMinute Window `json:"last_minute"`
	LastHour   Window `json:"last_hour"`
}

// Reach is what a task's allowed calls reached: distinct resources, and
// distinct destinations (a resource up to the end of its authority,
// "scheme://host", or the whole resource when it has none). The two
// booleans say whether this call's resource and destination were reached
// before. writ tracks at most MaxReached of each per task; past that the
// counts stop and an unseen one reads as not reached.
type Reach struct {
	Reached            int64 `json:"reached"`
	Destinations       int64 `json:"destinations"`
	ResourceReached    bool  `json:"resource_reached"`
	DestinationReached bool  `json:"destination_reached"`
}

// MaxReached bounds the resources and the destinations tracked per task.
const MaxReached = 4096

// Approvals counts a task's step-up approvals: Held are granted, unused
// and unexpired; Spent were used by a call; Pending await approvers and
// have not expired; Denied were denied.
type Approvals struct {
	Held    int64 `json:"held"`
	Spent   int64 `json:"spent"`
	Pending int64 `json:"pending"`
	Denied  int64 `json:"denied"`
}

// emptyHistory is what the engines see when the input carries no history
// (the task and exchange points, a document given to `writ policy eval`
// without one): no calls, no data class.
var emptyHistory = History{Version: HistoryVersion, Task: TaskHistory{MaxDataClassLevel: -1}}

// history returns in's history, or the empty one.
func history(in *Input) *History {
	if in.History != nil {
		return in.History
	}
	return &emptyHistory
}
