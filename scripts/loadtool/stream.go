package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stream adds, describes or deletes the JetStream stream a sink under
// measurement writes to, so that the comparison needs no NATS command-line
// tool: -add NAME -subjects S makes a file-backed stream with a two-minute
// duplicate window (as docs/sinks.md asks of a sink's stream), -info NAME
// prints its message count and sequence range, -delete NAME removes it.
func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	url := fs.String("url", nats.DefaultURL, "NATS server `URL`")
	add := fs.String("add", "", "add the stream `NAME`")
	subjects := fs.String("subjects", "", "the `subjects` an added stream takes")
	info := fs.String("info", "", "describe the stream `NAME`")
	del := fs.String("delete", "", "delete the stream `NAME`")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(*url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	switch {
	case *add != "" && *subjects != "":
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: *add, Subjects: []string{*subjects},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
		return err
	case *info != "":
		s, err := js.Stream(ctx, *info)
		if err != nil {
			return err
		}
		st := s.CachedInfo().State
		fmt.Printf("%d messages, sequences %d to %d\n", st.Msgs, st.FirstSeq, st.LastSeq)
		return nil
	case *del != "":
		return js.DeleteStream(ctx, *del)
	}
	return errors.Join(errUsage, errors.New("stream: want -add NAME -subjects S, -info NAME or -delete NAME"))
}
