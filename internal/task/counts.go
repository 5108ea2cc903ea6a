package task

// Counts are how many tasks are active and how many approval requests an
// approver can still decide, now: the server's gauges.
type Counts struct {
	ActiveTasks      int
	PendingApprovals int
}

// Counts counts the state as of now. It walks every task and approval
// under the state's lock, as the sweeper does each second, so it is for a
// scrape every few seconds, not for a request's path.
func (s *Service) Counts() Counts {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	var c Counts
	for _, t := range s.st.tasks {
		if t.State == StateActive && now.Before(t.ExpiresAt) {
			c.ActiveTasks++
		}
	}
	for _, a := range s.st.approvals {
		if decidable(a, s.st.tasks[a.TaskID], "", now) {
			c.PendingApprovals++
		}
	}
	return c
}
