package throttle_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/throttle"
	"github.com/ircam/ircam-auth/internal/users"
)

// slowUsers refuses every password, once release is closed.
type slowUsers struct {
	release chan struct{}
	checks  atomic.Int64
}

func (s *slowUsers) Authenticate(context.Context, string, string) (users.User, users.Method, error) {
	s.checks.Add(1)
	<-s.release
	return users.User{}, users.MethodLocal, users.ErrInvalidCredentials
}

// Memory stays bounded whatever the keys: at most maxKeys keys, each
// with at most max timestamps.
func TestLimiterMemoryIsBounded(t *testing.T) {
	c := newClock()
	l := throttle.NewLimiter(3, time.Minute, 100, c.Now)
	for i := range 10000 {
		key := fmt.Sprintf("user%d", i)
		if ok, _ := l.Acquire(key); !ok {
			t.Fatalf("%s refused on its first attempt", key)
		}
		l.Release(key, true)
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys after %d, want at most 100", n, i+1)
		}
	}
	// The newest keys are the ones kept.
	if l.Failures("user9999") != 1 || l.Failures("user0") != 0 {
		t.Errorf("failures: newest %d, oldest %d", l.Failures("user9999"), l.Failures("user0"))
	}
	// Expired keys are swept.
	c.Advance(2 * time.Minute)
	l.Acquire("x")
	l.Release("x", false)
	if n := l.Len(); n != 0 {
		t.Errorf("%d keys left after the window", n)
	}
}

func TestLimiterSlidingWindow(t *testing.T) {
	c := newClock()
	l := throttle.NewLimiter(3, 10*time.Minute, 0, c.Now)
	for range 3 {
		ok, _ := l.Acquire("k")
		if !ok {
			t.Fatal("refused under the limit")
		}
		l.Release("k", true)
		c.Advance(2 * time.Minute)
	}
	// Failures at 0, 2 and 4 min; it is 6 min: the first leaves at 10.
	ok, retry := l.Acquire("k")
	if ok || retry != 4*time.Minute {
		t.Fatalf("Acquire = %v %v, want refused for 4m", ok, retry)
	}
	c.Advance(4 * time.Minute)
	if ok, _ := l.Acquire("k"); !ok {
		t.Fatal("refused after the oldest failure left the window")
	}
	// A success releases without counting.
	l.Release("k", false)
	if n := l.Failures("k"); n != 2 {
		t.Errorf("%d failures, want 2", n)
	}
	l.Reset("k")
	if n := l.Failures("k"); n != 0 {
		t.Errorf("%d failures after Reset", n)
	}
	var nilLimiter *throttle.Limiter
	if ok, _ := nilLimiter.Acquire("k"); !ok {
		t.Error("a nil limiter refused")
	}
	if throttle.NewLimiter(0, time.Minute, 0, nil) != nil {
		t.Error("max 0 should be no limiter")
	}
}
