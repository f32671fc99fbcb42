package throttle

import (
	"sync"
	"time"
)

// Limiter counts failures per key within a sliding window. A key with Max
// failures in the last Window is refused until the oldest of them leaves
// the window.
//
// Attempts in flight do not count: many concurrent logins of one user (a
// CI suite's) are not refused. Concurrent guesses can therefore overshoot
// the limit by the number in flight, once: the next attempt after they
// end is refused.
//
// Memory is bounded: a key keeps at most Max timestamps, keys whose
// failures have all left the window are swept, and past MaxKeys keys the
// one whose last failure is the oldest is forgotten.
//
// A nil *Limiter allows everything.
type Limiter struct {
	max     int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	entries   map[string]*entry
	nextSweep time.Time
}

type entry struct {
	fails   []time.Time // oldest first, at most max, within the window
	pending int         // attempts allowed and not yet released: kept from eviction
}

// NewLimiter returns a limiter of max failures per key within window, for
// at most maxKeys keys; now is its clock (nil: time.Now). max <= 0 returns
// nil: no limit.
func NewLimiter(max int, window time.Duration, maxKeys int, now func() time.Time) *Limiter {
	if max <= 0 {
		return nil
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: window, maxKeys: maxKeys, now: now, entries: map[string]*entry{}}
}

// Acquire reserves an attempt for key. It returns false, and how long
// until an attempt is allowed again, when key has reached its limit; then
// nothing is reserved. An allowed attempt must be given back with Release.
func (l *Limiter) Acquire(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepLocked(now)
	e := l.entries[key]
	if e == nil {
		l.makeRoomLocked()
		e = &entry{}
		l.entries[key] = e
	}
	e.expire(now, l.window)
	if len(e.fails) >= l.max {
		// The failure whose leaving brings the count under the limit.
		i := len(e.fails) - l.max
		return false, max(e.fails[i].Add(l.window).Sub(now), time.Second)
	}
	e.pending++
	return true, 0
}

// Release gives back an attempt reserved by Acquire, counting it as a
// failure when failed is true.
func (l *Limiter) Release(key string, failed bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.entries[key]
	if e == nil { // forgotten to make room for others
		if !failed {
			return
		}
		l.makeRoomLocked()
		e = &entry{}
		l.entries[key] = e
	} else if e.pending > 0 {
		e.pending--
	}
	if failed {
		e.fails = append(e.fails, now)
		if len(e.fails) > l.max {
			e.fails = append(e.fails[:0], e.fails[len(e.fails)-l.max:]...)
		}
	}
	e.expire(now, l.window)
	l.dropIfEmptyLocked(key, e)
}

// Reset forgets the failures of key (attempts in flight stay reserved).
func (l *Limiter) Reset(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[key]; e != nil {
		e.fails = nil
		l.dropIfEmptyLocked(key, e)
	}
}

// Failures returns the number of failures of key within the window.
func (l *Limiter) Failures(key string) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		return 0
	}
	e.expire(l.now(), l.window)
	return len(e.fails)
}

// Len returns the number of keys the limiter holds.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// expire drops the failures that left the window ending at now.
func (e *entry) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(e.fails) && !now.Before(e.fails[i].Add(window)) {
		i++
	}
	if i > 0 {
		e.fails = append(e.fails[:0], e.fails[i:]...)
	}
}

func (l *Limiter) dropIfEmptyLocked(key string, e *entry) {
	if len(e.fails) == 0 && e.pending == 0 {
		delete(l.entries, key)
	}
}

// sweepLocked drops expired failures of every key, at most once a window.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.window)
	for k, e := range l.entries {
		e.expire(now, l.window)
		l.dropIfEmptyLocked(k, e)
	}
}

// makeRoomLocked makes room for one more key: expired keys go first, then
// the key whose last failure is the oldest (attempts in flight stay).
func (l *Limiter) makeRoomLocked() {
	if len(l.entries) < l.maxKeys {
		return
	}
	l.nextSweep = time.Time{}
	l.sweepLocked(l.now())
	for len(l.entries) >= l.maxKeys {
		var oldest string
		var at time.Time
		found := false
		for k, e := range l.entries {
			if e.pending > 0 || len(e.fails) == 0 {
				continue
			}
			if last := e.fails[len(e.fails)-1]; !found || last.Before(at) {
				oldest, at, found = k, last, true
			}
		}
		if !found {
			return // every key has an attempt in flight: let the map grow
		}
		delete(l.entries, oldest)
	}
}
