package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/witness"
)

func ledgerStatusCommand() *command {
	c := &command{name: "status", args: "[--data-dir DIR] [--config FILE] [-o table|json]",
		summary: "show the ledger's size, latest checkpoint and, with witnesses, its cosignatures and each witness's state"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		out := fs.String("o", "table", "output `format`: table or json")
		_, cfg, d, err := cf.parseRead(ctx, c, io, args, 0, 0, out)
		if err != nil {
			return err
		}
		defer d.Close()
		size, err := d.Store.Size(ctx)
		if err != nil {
			return fmt.Errorf("reading the ledger: %w", err)
		}
		st := statusJSON{Origin: d.Origin, VerifierKey: d.VerifierKey, Size: size}
		stored, err := d.Store.LatestCheckpoint(ctx)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return fmt.Errorf("reading the latest checkpoint: %w", err)
		default:
			st.CheckpointSize = &stored.Size
		}
		ws, err := server.Witnesses(cfg.Ledger)
		if err != nil {
			return err
		}
		if wst, ok := d.Store.(witness.Store); ok {
			status, err := witness.ReadStatus(ctx, wst, ws, cfg.Ledger.Quorum())
			if err != nil {
				return fmt.Errorf("reading the witnesses' state: %w", err)
			}
			st.setWitnessing(status)
		}
		if *out == "json" {
			return printJSON(io, st)
		}
		printStatus(io, st)
		return nil
	}
	return c
}

// statusJSON is `writ ledger status -o json`.
type statusJSON struct {
	Origin         string              `json:"origin"`
	VerifierKey    string              `json:"verifier_key"`
	Size           uint64              `json:"size"`
	CheckpointSize *uint64             `json:"checkpoint_size"`
	Quorum         int                 `json:"witness_quorum,omitempty"`
	Witnessed      *witnessedJSON      `json:"witnessed,omitempty"`
	Witnesses      []witnessStatusJSON `json:"witnesses"`
}

type witnessedJSON struct {
	CheckpointSize uint64            `json:"checkpoint_size"`
	Checkpoint     string            `json:"checkpoint"`
	Cosignatures   []cosignatureJSON `json:"cosignatures"`
}

type cosignatureJSON struct {
	Witness string    `json:"witness"`
	Key     string    `json:"key"`
	Time    time.Time `json:"time"`
}

type witnessStatusJSON struct {
	Name       string           `json:"name"`
	Configured bool             `json:"configured"`
	State      witness.State    `json:"state"`
	Refusal    *witness.Refusal `json:"refusal,omitempty"`
}

func (st *statusJSON) setWitnessing(s witness.Status) {
	st.Witnesses = []witnessStatusJSON{}
	if len(s.Witnesses) == 0 {
		return
	}
	st.Quorum = s.Quorum
	if w := s.Witnessed; w != nil {
		wj := &witnessedJSON{CheckpointSize: w.Checkpoint.Size, Checkpoint: string(w.Note()), Cosignatures: []cosignatureJSON{}}
		for _, c := range w.Cosignatures {
			wj.Cosignatures = append(wj.Cosignatures, cosignatureJSON{Witness: c.Name(), Key: c.Key, Time: c.Time})
		}
		st.Witnessed = wj
	}
	for _, w := range s.Witnesses {
		st.Witnesses = append(st.Witnesses, witnessStatusJSON{Name: w.Name, Configured: w.Configured, State: w.State, Refusal: w.State.Refusal})
	}
}

func printStatus(io IO, st statusJSON) {
	w := io.Stdout
	fmt.Fprintf(w, "ledger %s\nverifier key %s\n\n", st.Origin, st.VerifierKey)
	fmt.Fprintf(w, "size          %d events\n", st.Size)
	if st.CheckpointSize != nil {
		fmt.Fprintf(w, "checkpoint    latest of size %d\n", *st.CheckpointSize)
	} else {
		fmt.Fprintln(w, "checkpoint    none signed yet")
	}
	if len(st.Witnesses) == 0 {
		fmt.Fprintln(w, "witnesses     none configured (docs/witnessing.md)")
		return
	}
	if wd := st.Witnessed; wd != nil {
		fmt.Fprintf(w, "witnessed     the checkpoint of size %d, cosigned by %d (quorum %d):\n", wd.CheckpointSize, len(wd.Cosignatures), st.Quorum)
		for _, c := range wd.Cosignatures {
			fmt.Fprintf(w, "                %s at %s\n", c.Witness, c.Time.UTC().Format(time.RFC3339))
		}
	} else if st.Quorum > 0 {
		fmt.Fprintf(w, "witnessed     no checkpoint is cosigned by the quorum of %d yet\n", st.Quorum)
	}
	fmt.Fprintln(w)
	t := newTable(io)
	fmt.Fprintln(t, "WITNESS\tURL\tCOSIGNED\tAT\tSTATUS")
	for _, x := range st.Witnesses {
		at := "-"
		if !x.State.CosignedAt.IsZero() {
			at = x.State.CosignedAt.UTC().Format(time.RFC3339)
		}
		status := "ok"
		switch r := x.State.Refusal; {
		case r != nil:
			status = fmt.Sprintf("REFUSED (%s) the checkpoint of size %d at %s: %s", r.Reason, r.CheckpointSize, r.At.UTC().Format(time.RFC3339), r.Detail)
			if r.Index != nil {
				status += fmt.Sprintf(" [ledger event %d]", *r.Index)
			}
		case x.State.LastError != "":
			status = fmt.Sprintf("failing (%d in a row): %s", x.State.Failures, x.State.LastError)
		}
		if !x.Configured {
			status += " (no longer configured)"
		}
		url := x.State.URL
		if url == "" {
			url = "-"
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", x.Name, url, x.State.Size, at, status)
	}
	t.Flush()
}
