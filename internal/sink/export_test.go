package sink

// FixtureEvents is fixtureEvents for the package's external tests.
var FixtureEvents = fixtureEvents

// Stopping returns a channel closed once Close has begun to stop s.
func Stopping(s *Set) <-chan struct{} { return s.ctx.Done() }
