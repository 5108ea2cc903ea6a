package task

import (
	"fmt"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/printable"
)

// What people read must be what the ledger holds: identifiers and scope
// strings take no control or format character at all, free text (an
// intent, a reason) takes tabs and line breaks and the marks scripts need,
// but no control character and no bidirectional override (package
// printable). A refusal is ErrInvalid naming the field and the character.

// checkIdentifier refuses a control or format character in an identifier
// or scope string.
func checkIdentifier(field, s string) error {
	if r, at, ok := printable.Identifier(s); !ok {
		return invalid("%s holds %s at byte %d; identifiers and scope strings take printable characters only", field, printable.Name(r), at)
	}
	return nil
}

// checkText refuses a control character other than tab and line breaks,
// or a bidirectional override, in free text.
func checkText(field, s string) error {
	if r, at, ok := printable.Text(s); !ok {
		return invalid("%s holds %s at byte %d; free text takes tabs and line breaks but no other control or invisible reordering character", field, printable.Name(r), at)
	}
	return nil
}

// checkOpenText checks the characters of a task request: the agent, the
// parent, every scope string and the intent.
func checkOpenText(req api.OpenTask) error {
	if err := checkIdentifier("agent", req.Agent); err != nil {
		return err
	}
	if req.Parent != nil {
		if err := checkIdentifier("parent", *req.Parent); err != nil {
			return err
		}
	}
	if err := checkIdentifier("ttl", req.TTL); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    []string
	}{{"tools", req.Scope.Tools}, {"resources", req.Scope.Resources}, {"operations", req.Scope.Operations}, {"environments", req.Scope.Environments}} {
		for i, p := range f.v {
			if err := checkIdentifier(fmt.Sprintf("scope.%s[%d]", f.name, i), p); err != nil {
				return err
			}
		}
	}
	if err := checkIdentifier("scope.data_class", req.Scope.DataClass); err != nil {
		return err
	}
	return checkText("intent", req.Intent)
}

// checkCallText checks the characters of a call's tool, operation,
// resource and data class. Arguments are data, not shown as names, and
// are left as they are.
func checkCallText(req api.Authorize) error {
	for _, f := range []struct{ name, v string }{
		{"tool", req.Tool}, {"operation", req.Operation}, {"resource", req.Resource}, {"data_class", req.DataClass},
	} {
		if err := checkIdentifier(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}
