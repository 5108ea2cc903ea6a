package server

// BreakStore closes the store under a running server, as a failed disk
// would leave it: every later ledger commit fails.
func BreakStore(s *Server) error { return s.dir.Store.Close() }

// SnapshotInterval is the task service's snapshot interval for a
// configured task_snapshot_interval.
var SnapshotInterval = snapshotInterval

// SetCgroupLimits points the start's reading of a container's memory
// limit at files, until the returned function restores it.
func SetCgroupLimits(files []string) (restore func()) {
	prev := cgroupLimits
	cgroupLimits = files
	return func() { cgroupLimits = prev }
}
