package event

// WitnessRefused is witness.refused: a witness refused one of the log's
// checkpoints (docs/ledger.md, Witness refusals). The event has no task.
type WitnessRefused struct {
	// Witness is the witness's name, Key its verifier key, URL where it
	// was reached.
	Witness string `json:"witness"`
	Key     string `json:"key"`
	URL     string `json:"url"`
	// Status is the witness's HTTP answer; absent when writ read the
	// refusal from a 409 answer (rollback, fork at the same size).
	Status int    `json:"status,omitempty"`
	Reason string `json:"reason"`
	// CheckpointSize is the size of the checkpoint refused; WitnessSize
	// the size the witness said it had cosigned, when it said.
	CheckpointSize uint64  `json:"checkpoint_size"`
	WitnessSize    *uint64 `json:"witness_size,omitempty"`
	Detail         string  `json:"detail"`
}
