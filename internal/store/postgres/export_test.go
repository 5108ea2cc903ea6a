package postgres

import "testing"

// SmallPages makes the scans' pages n rows long for the rest of the test.
func SmallPages(t *testing.T, n int) {
	scan, body := scanPage, bodyPage
	scanPage, bodyPage = n, n
	t.Cleanup(func() { scanPage, bodyPage = scan, body })
}

// HeldLeaves returns how many leaves writ_lock_head returned to r, and
// from which index.
func HeldLeaves(r any) (from uint64, n int) {
	tr := r.(*txReader)
	return tr.leavesFrom, len(tr.leaves)
}
