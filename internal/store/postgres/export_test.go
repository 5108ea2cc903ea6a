package postgres

import "testing"

// SmallPages makes the scans' pages n rows long for the rest of the test.
func SmallPages(t *testing.T, n int) {
	scan, body := scanPage, bodyPage
	scanPage, bodyPage = n, n
	t.Cleanup(func() { scanPage, bodyPage = scan, body })
}
