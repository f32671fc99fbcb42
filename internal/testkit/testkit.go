// Package testkit holds the helpers that the tests of several packages
// share: a settable clock, a log buffer safe for concurrent writes, and the
// seeded users alice and bob.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"golang.org/x/crypto/bcrypt"
)

// Clock is an injected clock that tests move forward: pass its Now where
// the code under test takes the time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// SyncBuffer is a bytes.Buffer safe to read while other goroutines (a
// server's handlers, a running process) write to it: a log sink.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// AliceAndBob returns the seed users: alice (ID 1), who signs in with
// alicePassword, and bob (ID 2), who has no local password, a directory
// user. The password is hashed at bcrypt.MinCost.
func AliceAndBob(t testing.TB, alicePassword string) []fixtures.User {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []fixtures.User{
		{ID: 1, Username: "alice", Email: "alice@example.org", FirstName: "Alice", LastName: "Liddell", PasswordHash: string(hash)},
		{ID: 2, Username: "bob", Email: "bob@example.org", FirstName: "Bob", LastName: "Moog"},
	}
}
