// Package spiretest checks writ's identity layer against a real SPIRE server
// and agent. It runs only when WRIT_TEST_SPIRE=1; see docs/identity.md for how
// to install SPIRE.
package spiretest
