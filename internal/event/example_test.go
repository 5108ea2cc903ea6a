package event_test

import (
	"encoding/json"
	"fmt"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

func ExampleRead() {
	ev := ledger.Event{Type: ledger.TypeTaskRevoked, TaskID: "tsk_1",
		Data: json.RawMessage(`{"by":"oidc:test#alice","reason":"done elsewhere"}`)}
	data, err := event.Read(ev)
	if err != nil {
		fmt.Println("data that does not fit:", err)
	}
	switch d := data.(type) {
	case event.TaskEnded:
		fmt.Printf("%s by %s: %s\n", ev.Type, d.By, d.Reason)
	case event.Rejection:
		reason, _ := d.Refusal()
		fmt.Println("refused:", reason)
	}
	// Output: task.revoked by oidc:test#alice: done elsewhere
}
