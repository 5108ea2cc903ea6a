package sink

// FixtureEvents is fixtureEvents for the package's external tests.
var FixtureEvents = fixtureEvents
