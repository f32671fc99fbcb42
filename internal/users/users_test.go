package users_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

// seed mirrors fixtures/default.yaml: alice is local, bob is a directory
// user listed in the fixtures with a different last name than the
// directory's, carol is in the directory only.
func seed(t testing.TB) []fixtures.User {
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []fixtures.User{
		{ID: 1, Username: "alice", Email: "alice@example.org", FirstName: "Alice", LastName: "Liddell", PasswordHash: string(h)},
		{ID: 2, Username: "bob", Email: "old-bob@example.org", FirstName: "Robert", LastName: "Fixture", Avatar: "https://example.org/bob.png"},
	}
}

var starters = []struct {
	name  string
	start func(testing.TB) *ldaptest.Server
}{
	{"glauth", ldaptest.StartGlauth},
	{"slapd", ldaptest.StartSlapd},
}

func forEachDirectory(t *testing.T, test func(t *testing.T, s *ldaptest.Server, store *users.Store)) {
	for _, st := range starters {
		t.Run(st.name, func(t *testing.T) {
			s := st.start(t)
			for mode, cfg := range map[string]ldapbind.Config{"search": s.SearchConfig, "template": s.TemplateConfig} {
				t.Run(mode, func(t *testing.T) {
					cfg.Timeout = 2 * time.Second
					c, err := ldapbind.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					store, err := users.NewStore(seed(t), c, bcrypt.MinCost)
					if err != nil {
						t.Fatal(err)
					}
					test(t, s, store)
				})
			}
		})
	}
}

func TestLocalUserNeverTouchesTheDirectory(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, store *users.Store) {
		s.Stop()
		defer s.Start()
		u, method, err := store.Authenticate(context.Background(), "alice", "alice-pw")
		if err != nil || method != users.MethodLocal || u.IsLDAPUser() || u.ID != 1 {
			t.Fatalf("alice with the directory down: %+v %s %v", u, method, err)
		}
		// Case-insensitive username, as the real server's iexact lookup.
		if _, _, err := store.Authenticate(context.Background(), "ALICE", "alice-pw"); err != nil {
			t.Errorf("ALICE: %v", err)
		}
		// A wrong local password is refused locally: never "unavailable",
		// never an LDAP bind, even though the directory is down.
		_, method, err = store.Authenticate(context.Background(), "alice", "wrong")
		if !errors.Is(err, users.ErrInvalidCredentials) || method != users.MethodLocal {
			t.Errorf("alice, wrong password: %s %v", method, err)
		}
	})
}

// A user with a local password whose name is also in the directory is
// never checked against it: the directory password does not work.
func TestLocalPasswordWinsOverDirectory(t *testing.T) {
	s := ldaptest.StartGlauth(t)
	c, err := ldapbind.New(s.SearchConfig)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("local-bob"), bcrypt.MinCost)
	store, err := users.NewStore([]fixtures.User{{ID: 2, Username: "bob", PasswordHash: string(h)}}, c, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Authenticate(context.Background(), "bob", ldaptest.Bob.Password); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("bob's directory password accepted for a local user: %v", err)
	}
	if u, m, err := store.Authenticate(context.Background(), "bob", "local-bob"); err != nil || m != users.MethodLocal || u.IsLDAPUser() {
		t.Errorf("bob's local password: %+v %s %v", u, m, err)
	}
}

func TestDirectoryUsers(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, store *users.Store) {
		ctx := context.Background()
		bob, method, err := store.Authenticate(ctx, "bob", ldaptest.Bob.Password)
		if err != nil || method != users.MethodLDAP {
			t.Fatalf("bob: %s %v", method, err)
		}
		// The directory's values win; the fixtures' avatar stays; the id
		// is the fixture's.
		want := users.User{ID: 2, Username: "bob", Email: "bob@example.org", FirstName: "Bob", LastName: "Moog", Avatar: "https://example.org/bob.png"}
		if bob != want || !bob.IsLDAPUser() {
			t.Errorf("bob = %+v, want %+v", bob, want)
		}
		if stored, _ := store.ByID(2); stored != want {
			t.Errorf("stored bob = %+v", stored)
		}

		if _, ok := store.Lookup("carol"); ok {
			t.Fatal("carol is in the store before her first login")
		}
		carol, _, err := store.Authenticate(ctx, "carol", ldaptest.Carol.Password)
		if err != nil {
			t.Fatalf("carol: %v", err)
		}
		want = users.User{ID: int64(ldaptest.Carol.UIDNumber), Username: "carol", Email: "carol@example.org", FirstName: "Carol", LastName: "Danvers"}
		if carol != want || !carol.IsLDAPUser() {
			t.Errorf("carol = %+v, want %+v", carol, want)
		}
		if got, ok := store.ByID(carol.ID); !ok || got.Username != "carol" {
			t.Errorf("carol not stored by id: %+v", got)
		}
		again, _, err := store.Authenticate(ctx, "carol", ldaptest.Carol.Password)
		if err != nil || again.ID != carol.ID {
			t.Errorf("carol's second login: id %d, err %v", again.ID, err)
		}
	})
}

func TestRefused(t *testing.T) {
	cases := []struct{ name, user, password string }{
		{"wrong LDAP password", "bob", "wrong"},
		{"unknown user", "nobody", "x"},
		{"empty password, directory user", "bob", ""},
		{"empty password, local user", "alice", ""},
		{"empty password, unknown user", "nobody", ""},
		{"wildcard", "*", ldaptest.Bob.Password},
		{"filter injection", "bob)(uid=*", ldaptest.Bob.Password},
		{"DN injection", "bob,ou=x", ldaptest.Bob.Password},
	}
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, store *users.Store) {
		for _, tc := range cases {
			if _, _, err := store.Authenticate(context.Background(), tc.user, tc.password); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Errorf("%s: %v, want ErrInvalidCredentials", tc.name, err)
			}
		}
		if _, ok := store.Lookup("*"); ok {
			t.Error("a refused login added a user")
		}
	})
}

func TestDirectoryDown(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, store *users.Store) {
		s.Stop()
		_, _, err := store.Authenticate(context.Background(), "bob", ldaptest.Bob.Password)
		if !errors.Is(err, users.ErrDirectoryUnavailable) || errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("bob with the directory down: %v, want only ErrDirectoryUnavailable", err)
		}
		s.Start()
		if _, _, err := store.Authenticate(context.Background(), "bob", ldaptest.Bob.Password); err != nil {
			t.Fatalf("bob after the directory came back: %v", err)
		}
	})
}

// fakeDirectory answers with a fixed entry, to test ids without a server.
type fakeDirectory struct{ entries map[string]ldapbind.Entry }

func (f fakeDirectory) Authenticate(_ context.Context, username, _ string) (ldapbind.Entry, error) {
	e, ok := f.entries[username]
	if !ok {
		return ldapbind.Entry{}, ldapbind.ErrInvalidCredentials
	}
	return e, nil
}

// Ids of users first seen through LDAP are the same on every run: the
// uidNumber when it is free, otherwise derived from the username.
func TestStableIDs(t *testing.T) {
	dir := fakeDirectory{map[string]ldapbind.Entry{
		"dave": {UIDNumber: 1},    // taken by alice
		"erin": {UIDNumber: 0},    // none
		"finn": {UIDNumber: 5000}, // free
	}}
	ids := func() map[string]int64 {
		store, err := users.NewStore(seed(t), dir, bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, name := range []string{"finn", "erin", "dave"} {
			u, _, err := store.Authenticate(context.Background(), name, "pw")
			if err != nil {
				t.Fatal(err)
			}
			out[name] = u.ID
		}
		return out
	}
	first, second := ids(), ids()
	for name, id := range first {
		if second[name] != id {
			t.Errorf("%s: id %d then %d", name, id, second[name])
		}
		if id <= 0 || id >= 1<<53 {
			t.Errorf("%s: id %d outside JSON's exact integers", name, id)
		}
	}
	if first["finn"] != 5000 {
		t.Errorf("finn: id %d, want his uidNumber 5000", first["finn"])
	}
	if first["dave"] == 1 {
		t.Error("dave got alice's id")
	}
}

func TestNoDirectory(t *testing.T) {
	store, err := users.NewStore(seed(t), nil, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Authenticate(context.Background(), "bob", "x"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("bob without a directory: %v", err)
	}
	if _, _, err := store.Authenticate(context.Background(), "alice", "alice-pw"); err != nil {
		t.Errorf("alice without a directory: %v", err)
	}
}

func TestReplaceKeepsDirectoryUsers(t *testing.T) {
	dir := fakeDirectory{map[string]ldapbind.Entry{"carol": {UIDNumber: 10003, Mail: "carol@example.org"}}}
	store, err := users.NewStore(seed(t), dir, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Authenticate(context.Background(), "carol", "pw"); err != nil {
		t.Fatal(err)
	}
	// The new fixtures drop bob and rename alice's email.
	next := seed(t)[:1]
	next[0].Email = "new-alice@example.org"
	store.Replace(next, dir)
	if _, ok := store.Lookup("bob"); ok {
		t.Error("bob survived his removal from the fixtures")
	}
	if a, _ := store.ByID(1); a.Email != "new-alice@example.org" {
		t.Errorf("alice = %+v", a)
	}
	if c, ok := store.ByID(10003); !ok || c.Username != "carol" {
		t.Error("carol, first seen through LDAP, was dropped by a reload")
	}
}

func TestPutAndRemove(t *testing.T) {
	store, err := users.NewStore(seed(t), nil, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(users.User{ID: 7, Username: "ALICE"}); err == nil {
		t.Error("a second alice (case-insensitively) was accepted")
	}
	if err := store.Put(users.User{ID: 0, Username: "zed"}); err == nil {
		t.Error("id 0 accepted")
	}
	if err := store.Put(users.User{ID: 1, Username: "alicia", Email: "a@x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Lookup("alice"); ok {
		t.Error("the old name still resolves after a rename")
	}
	if u, ok := store.Lookup("Alicia"); !ok || u.ID != 1 || !u.IsLDAPUser() {
		t.Errorf("alicia = %+v %v", u, ok)
	}
	if !store.Remove(1) || store.Remove(1) {
		t.Error("Remove should report true once")
	}
	if _, ok := store.ByID(1); ok {
		t.Error("removed user still found")
	}
}

// NewStore makes its dummy hash in the background, so that a server
// starts without waiting for a bcrypt; refusals that need the hash wait
// for it. Many of them at once, right after NewStore, all get the one
// answer (and, under -race, show that the hash is published safely).
func TestDummyHashInBackground(t *testing.T) {
	if _, err := users.NewStore(seed(t), nil, bcrypt.MaxCost+1); err == nil {
		t.Error("NewStore accepted a bcrypt cost out of range")
	}
	store, err := users.NewStore(seed(t), nil, bcrypt.MinCost+2)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := range cap(errs) {
		go func() {
			user := []string{"nobody", "bob", "", "mallory"}[i%4]
			_, _, err := store.Authenticate(context.Background(), user, "pw")
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("refusal right after NewStore: %v", err)
		}
	}
}
