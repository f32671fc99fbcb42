package users_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

// calibratedCost is the smallest bcrypt cost whose comparison takes at
// least 5 ms here: enough to stand out of a loopback LDAP round trip
// (so that a missing bcrypt shows), small enough to keep the test short,
// with or without the race detector.
func calibratedCost(t *testing.T) int {
	for cost := bcrypt.MinCost; cost < 12; cost++ {
		h, err := bcrypt.GenerateFromPassword([]byte("x"), cost)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		bcrypt.CompareHashAndPassword(h, []byte("y"))
		if time.Since(start) >= 5*time.Millisecond {
			return cost
		}
	}
	return 12
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Unknown users, wrong directory passwords and wrong local passwords take
// about the same time (SPEC §3), against the embedded glauth with every
// hash at one cost: local, directory and the store's dummy hash. This is
// the slow-directory case; the default fixtures' directory hashes are
// cheap (fixtures.DirectoryBcryptCost), so a wrong directory password is
// refused fast and the store's padding is what evens the times out.
func TestRefusalsTakeComparableTime(t *testing.T) {
	cost := calibratedCost(t)
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	d, err := ldapbind.StartDirectory(context.Background(), ldapbind.DirectoryConfig{
		Listen: "127.0.0.1:0",
		BaseDN: "dc=ircam,dc=fr",
		Groups: []ldapbind.DirectoryGroup{{Name: "people", GID: 5501}, {Name: "services", GID: 5502}},
		Users: []ldapbind.DirectoryUser{
			// The service account's hash is cheap, as fixtures.DirectoryBcryptCost
			// makes it: its bind happens at every search-then-bind login.
			{Name: "ircam-auth", PasswordHash: cheapHash(t, "search-pw"), Groups: []string{"services"}, Search: true},
			{Name: "bob", PasswordHash: hash("bob-pw"), UIDNumber: 10002, Groups: []string{"people"}},
			{Name: "carol", PasswordHash: hash("carol-pw"), UIDNumber: 10003, Groups: []string{"people"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	search, err := d.ClientConfig("ircam-auth")
	if err != nil {
		t.Fatal(err)
	}
	search.BindPassword = "search-pw"
	// Without a service account's bind, which costs glauth a bcrypt at
	// every login, an unknown name costs the directory nothing: this is
	// the mode where a missing bcrypt would show.
	template := ldapbind.Config{URL: d.URL(), UserDNTemplate: "cn={username},ou=people,ou=users,dc=ircam,dc=fr"}
	for _, mode := range []struct {
		name    string
		cfg     ldapbind.Config
		compare bool // measure the directory alone too
	}{{"template", template, true}, {"search", search, false}} {
		t.Run(mode.name, func(t *testing.T) {
			client, err := ldapbind.New(mode.cfg)
			if err != nil {
				t.Fatal(err)
			}
			store, err := users.NewStore([]fixtures.User{
				{ID: 1, Username: "alice", PasswordHash: hash("alice-pw")},
				{ID: 2, Username: "bob"},
			}, client, cost)
			if err != nil {
				t.Fatal(err)
			}
			// Timing on a shared machine is noisy: measure again before
			// calling a difference real, and fail only when every attempt
			// shows it.
			var problems []string
			for attempt := range 3 {
				if problems = compareRefusals(t, cost, client, store, mode.compare && attempt == 0); len(problems) == 0 {
					return
				}
				t.Logf("attempt %d: %v", attempt+1, problems)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// compareRefusals reports the kinds of refusal whose median time is over
// 3 times another's. With directoryToo, it also logs whether the
// directory alone shows a difference the store must hide.
func compareRefusals(t *testing.T, cost int, client *ldapbind.Client, store *users.Store, directoryToo bool) []string {
	ctx := context.Background()

	// What the directory alone does, to know the test can see a missing
	// bcrypt: an unknown name costs it no hash comparison.
	raw := map[string]func() error{
		"directory: unknown user": func() error { _, err := client.Authenticate(ctx, "nobody", "x"); return err },
		"directory: wrong password": func() error {
			_, err := client.Authenticate(ctx, "bob", "wrong")
			return err
		},
	}
	cases := map[string]func() error{
		"unknown user":                         func() error { _, _, err := store.Authenticate(ctx, "nobody", "wrong"); return err },
		"wrong local password":                 func() error { _, _, err := store.Authenticate(ctx, "alice", "wrong"); return err },
		"wrong LDAP password (known user)":     func() error { _, _, err := store.Authenticate(ctx, "bob", "wrong"); return err },
		"wrong LDAP password (directory only)": func() error { _, _, err := store.Authenticate(ctx, "carol", "wrong"); return err },
	}
	const tries = 11
	measure := func(fns map[string]func() error, wantErr error) map[string]time.Duration {
		times := map[string][]time.Duration{}
		for range tries {
			for name, fn := range fns { // interleaved: a slow moment hits every case
				start := time.Now()
				err := fn()
				times[name] = append(times[name], time.Since(start))
				if !errors.Is(err, wantErr) {
					t.Fatalf("%s: %v, want %v", name, err, wantErr)
				}
			}
		}
		out := map[string]time.Duration{}
		for name, ds := range times {
			out[name] = median(ds)
			t.Logf("bcrypt cost %d: %-38s median %v", cost, name, out[name])
		}
		return out
	}
	got := measure(cases, users.ErrInvalidCredentials)
	var problems []string
	for a, ta := range got {
		for b, tb := range got {
			if ta > 3*tb {
				problems = append(problems, fmt.Sprintf("%s (median %v) takes more than 3 times as long as %s (median %v)", a, ta, b, tb))
			}
		}
	}
	if !directoryToo {
		return problems
	}
	dirTimes := measure(raw, ldapbind.ErrInvalidCredentials)
	if dirTimes["directory: wrong password"] < 3*dirTimes["directory: unknown user"] {
		t.Logf("note: the directory alone answers an unknown user and a wrong password within a factor 3 (%v, %v): this run would not catch a missing bcrypt",
			dirTimes["directory: unknown user"], dirTimes["directory: wrong password"])
	}
	return problems
}

func cheapHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
