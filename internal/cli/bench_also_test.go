package cli

import (
	"strings"
	"testing"
)

func TestBenchAlsoTakesOnlyURLs(t *testing.T) {
	_, errs, code := runWrit(t, "bench", "authorize", "--token", "x", "--also", "replica-2:7780")
	if code == 0 || !strings.Contains(errs, "want an http:// or https:// URL") {
		t.Errorf("--also without a scheme: exit %d, stderr %q", code, errs)
	}
	var l urlList
	for _, u := range []string{"http://a:1/", "https://b"} {
		if err := l.Set(u); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.String(); got != "http://a:1,https://b" {
		t.Errorf("urlList = %q", got)
	}
}
