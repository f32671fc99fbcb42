package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/throttle"
	"github.com/ircam/ircam-auth/internal/users"
)

// newClock is a settable clock at noon on 1 January 2025.
func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)) }

// fakeUsers knows one password per user and counts the password checks.
type fakeUsers struct {
	mu        sync.Mutex
	passwords map[string]string
	checks    int
	err       error // when set, every check fails with it
}

func (f *fakeUsers) Authenticate(_ context.Context, username, password string) (users.User, users.Method, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if f.err != nil {
		return users.User{}, users.MethodLDAP, f.err
	}
	if pw, ok := f.passwords[username]; ok && pw == password {
		return users.User{ID: 1, Username: username}, users.MethodLocal, nil
	}
	return users.User{}, users.MethodLocal, users.ErrInvalidCredentials
}

func (f *fakeUsers) Checks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

func newGuard(t *testing.T, perUser, perIP int, c *testkit.Clock) *throttle.Guard {
	t.Helper()
	g, err := throttle.New(throttle.Config{MaxFailuresPerUser: perUser, MaxFailuresPerIP: perIP, Window: 5 * time.Minute, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const addr = "192.0.2.1:40000"

// failN makes n logins of user from addr with a wrong password, each of
// which must fail with want.
func failN(t *testing.T, g *throttle.Guard, a throttle.Authenticator, n int, user string, want error) {
	t.Helper()
	for i := range n {
		if _, _, err := g.Authenticate(context.Background(), a, addr, user, "wrong"); !errors.Is(err, want) {
			t.Fatalf("login %d of %s: %v, want %v", i+1, user, err, want)
		}
	}
}

func TestPerUserLimit(t *testing.T) {
	c := newClock()
	g := newGuard(t, 3, 0, c)
	f := &fakeUsers{passwords: map[string]string{"bob": "right"}}
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := g.Authenticate(ctx, f, addr, "bob", "wrong"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		c.Advance(time.Minute)
	}
	// Over the limit: refused without a check, whatever the spelling or
	// the address, even with the right password.
	for _, name := range []string{"bob", "BOB", " Bob "} {
		_, _, err := g.Authenticate(ctx, f, "198.51.100.7:1", name, "right")
		if !errors.Is(err, throttle.ErrTooManyAttempts) || errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("%q over the limit: %v", name, err)
		}
	}
	if f.Checks() != 3 {
		t.Errorf("%d password checks, want 3: a throttled login was checked", f.Checks())
	}
	// The first failure was at 12:00 and the window is 5 min; it is 12:03.
	_, _, err := g.Authenticate(ctx, f, addr, "bob", "right")
	if got := throttle.RetryAfter(err); got != 2*time.Minute {
		t.Errorf("RetryAfter = %v, want 2m", got)
	}
	var te *throttle.Error
	if !errors.As(err, &te) || te.Limit != "user" {
		t.Errorf("error %#v, want the user limit", err)
	}
	// Another user is not affected.
	if _, _, err := g.Authenticate(ctx, f, addr, "alice", "x"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("alice: %v", err)
	}
	// Once the oldest failure leaves the window, one more try is allowed.
	c.Advance(2 * time.Minute)
	if _, _, err := g.Authenticate(ctx, f, addr, "bob", "right"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// The success reset bob's count: three more failures are allowed.
	failN(t, g, f, 3, "bob", users.ErrInvalidCredentials)
	if _, _, err := g.Authenticate(ctx, f, addr, "bob", "right"); !errors.Is(err, throttle.ErrTooManyAttempts) {
		t.Fatalf("after 3 new failures: %v", err)
	}
}

func TestPerIPLimit(t *testing.T) {
	c := newClock()
	g := newGuard(t, 100, 5, c)
	f := &fakeUsers{passwords: map[string]string{"alice": "right"}}
	ctx := context.Background()
	for i := range 5 {
		// A different username each time: only the address limit sees it.
		if _, _, err := g.Authenticate(ctx, f, addr, fmt.Sprintf("user%d", i), "x"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, _, err := g.Authenticate(ctx, f, "192.0.2.1:50000", "alice", "right")
	var te *throttle.Error
	if !errors.As(err, &te) || te.Limit != "ip" {
		t.Fatalf("from the same address, another port: %v, want the ip limit", err)
	}
	if _, _, err := g.Authenticate(ctx, f, "192.0.2.2:1", "alice", "right"); err != nil {
		t.Errorf("from another address: %v", err)
	}
	// A success does not reset the address's count.
	if _, _, err := g.Authenticate(ctx, f, addr, "alice", "right"); !errors.Is(err, throttle.ErrTooManyAttempts) {
		t.Errorf("the address is still over its limit: %v", err)
	}
	if f.Checks() != 6 {
		t.Errorf("%d checks, want 6", f.Checks())
	}
	c.Advance(5 * time.Minute)
	if _, _, err := g.Authenticate(ctx, f, addr, "alice", "right"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

// A directory outage is not the user's failure: it does not count.
func TestUnavailableDoesNotCount(t *testing.T) {
	c := newClock()
	g := newGuard(t, 2, 2, c)
	f := &fakeUsers{err: users.ErrDirectoryUnavailable}
	failN(t, g, f, 10, "bob", users.ErrDirectoryUnavailable)
	if f.Checks() != 10 {
		t.Errorf("%d checks, want 10", f.Checks())
	}
}

// Refused attempts do not extend the lockout: it ends one window after the
// failures, however much is sent meanwhile.
func TestRefusalsDoNotExtendTheLockout(t *testing.T) {
	c := newClock()
	g := newGuard(t, 2, 0, c)
	f := &fakeUsers{passwords: map[string]string{"bob": "right"}}
	ctx := context.Background()
	failN(t, g, f, 2, "bob", users.ErrInvalidCredentials)
	for range 4 {
		c.Advance(time.Minute)
		if _, _, err := g.Authenticate(ctx, f, addr, "bob", "c"); !errors.Is(err, throttle.ErrTooManyAttempts) {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	if _, _, err := g.Authenticate(ctx, f, addr, "bob", "right"); err != nil {
		t.Fatalf("five minutes after the failures: %v", err)
	}
}

// Concurrent logins of one user are not refused, however many: attempts
// in flight do not count, only failures.
func TestConcurrentLoginsAreNotRefused(t *testing.T) {
	c := newClock()
	g := newGuard(t, 5, 5, c)
	f := &fakeUsers{passwords: map[string]string{"bob": "right"}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, _, err := g.Authenticate(context.Background(), f, addr, "bob", "right"); err != nil {
				t.Errorf("concurrent login: %v", err)
			}
		})
	}
	wg.Wait()
}

// Concurrent guesses overshoot the limit by the number in flight at most,
// and the next attempt after them is refused without a check.
func TestConcurrentGuesses(t *testing.T) {
	c := newClock()
	g := newGuard(t, 5, 0, c)
	f := &slowUsers{release: make(chan struct{})}
	var wg sync.WaitGroup
	const inFlight = 20
	for range inFlight {
		wg.Go(func() { g.Authenticate(context.Background(), f, addr, "bob", "x") })
	}
	for f.checks.Load() < inFlight {
		time.Sleep(time.Millisecond)
	}
	close(f.release)
	wg.Wait()
	if _, _, err := g.Authenticate(context.Background(), f, addr, "bob", "x"); !errors.Is(err, throttle.ErrTooManyAttempts) {
		t.Fatalf("after %d failures: %v", inFlight, err)
	}
	if n := f.checks.Load(); n != inFlight {
		t.Errorf("%d checks, want %d", n, inFlight)
	}
}

func TestDisabled(t *testing.T) {
	c := newClock()
	g := newGuard(t, 0, 0, c)
	var nilGuard *throttle.Guard
	f := &fakeUsers{}
	failN(t, g, f, 100, "bob", users.ErrInvalidCredentials)
	failN(t, nilGuard, f, 100, "bob", users.ErrInvalidCredentials)
	if f.Checks() != 200 {
		t.Errorf("%d checks, want 200", f.Checks())
	}
}

func TestClientKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1:1234":                "192.0.2.1",
		"[::ffff:192.0.2.1]:1":          "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":    "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":             "fe80::/64",
		"not an address":                "not an address",
		"@":                             "@",
		"[2001:db8:1:3::1]:443":         "2001:db8:1:3::/64",
		"127.0.0.1:9000":                "127.0.0.1",
		"":                              "",
		"[::1]:9000":                    "::/64",
		"10.0.0.1":                      "10.0.0.1",
		"2001:db8::1":                   "2001:db8::/64",
		"[2001:db8::1]":                 "[2001:db8::1]",
		"unix-socket-peer":              "unix-socket-peer",
		"192.0.2.1:1234:extra":          "192.0.2.1:1234:extra",
		"[2001:db8:0:0:1::1]:1":         "2001:db8::/64",
		"[2001:db8:0:1:1::1]:1":         "2001:db8:0:1::/64",
		"[2001:0db8:0000:0001::9]:8080": "2001:db8:0:1::/64",
	}
	for in, want := range cases {
		if got := throttle.ClientKey(in); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUserKey(t *testing.T) {
	for _, in := range []string{"bob", "BOB", " bob", "bob\t", "Bob"} {
		if got := throttle.UserKey(in); got != "bob" {
			t.Errorf("UserKey(%q) = %q", in, got)
		}
	}
	if got := throttle.UserKey("Bob  Moog"); got != "bob moog" {
		t.Errorf("UserKey = %q", got)
	}
	if got := throttle.UserKey(strings.Repeat("a", 10000)); len(got) > 256 {
		t.Errorf("a %d-byte key", len(got))
	}
}

func TestInMinutes(t *testing.T) {
	cases := map[time.Duration]string{
		time.Second: "1 minute", time.Minute: "1 minute", 61 * time.Second: "2 minutes",
		5 * time.Minute: "5 minutes", 0: "1 minute",
	}
	for d, want := range cases {
		if got := throttle.InMinutes(d); got != want {
			t.Errorf("InMinutes(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestInSeconds(t *testing.T) {
	cases := map[time.Duration]string{
		time.Second: "1", time.Millisecond: "1", 1500 * time.Millisecond: "2", 5 * time.Minute: "300",
	}
	for d, want := range cases {
		if got := throttle.InSeconds(d); got != want {
			t.Errorf("InSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	_, err := throttle.New(throttle.Config{MaxFailuresPerUser: -1, MaxFailuresPerIP: -1, Window: -1, MaxKeys: -1})
	if err == nil {
		t.Fatal("negative limits accepted")
	}
	for _, want := range []string{"MaxFailuresPerUser", "MaxFailuresPerIP", "Window", "MaxKeys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
}

// A throttled login is logged with the user and the address, never the
// password.
func TestThrottledLoginIsLogged(t *testing.T) {
	var buf strings.Builder
	g, err := throttle.New(throttle.Config{MaxFailuresPerUser: 1, Now: newClock().Now,
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUsers{}
	if _, _, err := g.Authenticate(context.Background(), f, addr, "bob", "first-guess"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatalf("first guess: %v", err)
	}
	if _, _, err := g.Authenticate(context.Background(), f, addr, "bob", "second-guess"); !errors.Is(err, throttle.ErrTooManyAttempts) {
		t.Fatalf("second guess: %v", err)
	}
	out := buf.String()
	for _, want := range []string{"login throttled", "user=bob", "client_ip=192.0.2.1", "limit=user", "retry_after=5m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "guess") {
		t.Errorf("a password is logged: %s", out)
	}
}
