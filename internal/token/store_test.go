package token

import (
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
)

// TestPurge: expired codes and tokens leave memory on a later write.
func TestPurge(t *testing.T) {
	s := newStore()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s.addCode(now, &code{req: grant.CodeRequest{ClientID: "c", UserID: 1}, expiresAt: now.Add(time.Minute)})
	s.mu.Lock()
	s.issueLocked(now, record{clientID: "c", scope: "read"}, time.Hour, 2*time.Hour, true)
	s.mu.Unlock()
	if len(s.codes) != 1 || len(s.tokens) != 2 {
		t.Fatalf("store has %d codes, %d tokens; want 1, 2", len(s.codes), len(s.tokens))
	}

	later := now.Add(90 * time.Minute) // code and access token expired, refresh not
	s.addCode(later, &code{expiresAt: later.Add(time.Minute)})
	if len(s.codes) != 1 || len(s.tokens) != 1 {
		t.Errorf("after purge: %d codes, %d tokens; want 1, 1", len(s.codes), len(s.tokens))
	}

	// Within purgeEvery of the last sweep, writes do not sweep again.
	s.addCode(later.Add(purgeEvery/2), &code{expiresAt: later})
	if len(s.codes) != 2 {
		t.Errorf("%d codes, want 2", len(s.codes))
	}
}

func TestNewSecret(t *testing.T) {
	a, b := newSecret(), newSecret()
	if len(a) != 43 || a == b {
		t.Errorf("newSecret: %q, %q", a, b)
	}
}
