package testkit

import (
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// Interrupt stops a process the test started as an operator would: an
// interrupt (SIGINT), then a kill if it has not exited within grace. exited
// is closed, or receives, once the process has been waited for. It reports
// whether the process stopped on the interrupt.
func Interrupt[T any](p *os.Process, exited <-chan T, grace time.Duration) bool {
	p.Signal(os.Interrupt)
	select {
	case <-exited:
		return true
	case <-time.After(grace):
		p.Kill()
		<-exited
		return false
	}
}

// Ready reports whether the server answers GET url (its /readyz) with 200
// OK; the error says what it answered instead.
func Ready(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// ProcessCPU is the CPU time, user and system, this process has used
// (getrusage).
func ProcessCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
