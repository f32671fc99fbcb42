// Package ldaptest starts real LDAP servers for tests: the embedded glauth
// directory, and a throw-away OpenLDAP slapd, seeded with the same people.
package ldaptest

import (
	"context"
	"testing"

	"github.com/ircam/ircam-auth/internal/ldapbind"
	"golang.org/x/crypto/bcrypt"
)

// Person is a person of the test directories.
type Person struct {
	UID       string
	Password  string
	Mail      string
	GivenName string
	SN        string
	UIDNumber int
}

// The people every test directory holds; they match fixtures/default.yaml.
var (
	Bob   = Person{UID: "bob", Password: "bob-ldap-pw", Mail: "bob@example.org", GivenName: "Bob", SN: "Moog", UIDNumber: 10002}
	Carol = Person{UID: "carol", Password: "carol-ldap-pw", Mail: "carol@example.org", GivenName: "Carol", SN: "Danvers", UIDNumber: 10003}
	// Search is the service account that may search the directory.
	Search = Person{UID: "ircam-auth", Password: "ircam-auth-search-pw"}
	People = []Person{Bob, Carol}
)

// BaseDN is the base DN of every test directory.
const BaseDN = "dc=ircam,dc=fr"

// Server is a running test directory.
type Server struct {
	Name string // "glauth" or "slapd", for subtest names
	URL  string // ldap://127.0.0.1:port
	// SearchConfig finds users by search-then-bind as the service account.
	SearchConfig ldapbind.Config
	// TemplateConfig binds with a user DN template.
	TemplateConfig ldapbind.Config
	// UserDN is the DN of a person.
	UserDN func(uid string) string
	// Stop stops the server; Start starts it again on the same address.
	// Tests use them to take the directory down and bring it back.
	Stop  func()
	Start func()
}

// StartGlauth starts the embedded glauth directory on a free loopback
// port, seeded with the service account and People. It stops when the test
// ends.
func StartGlauth(t testing.TB) *Server {
	t.Helper()
	cfg := ldapbind.DirectoryConfig{
		Listen: "127.0.0.1:0",
		BaseDN: BaseDN,
		Groups: []ldapbind.DirectoryGroup{{Name: "people", GID: 5501}, {Name: "services", GID: 5502}},
		Users: []ldapbind.DirectoryUser{{
			Name: Search.UID, PasswordHash: hash(t, Search.Password),
			Groups: []string{"services"}, Search: true,
		}},
	}
	for _, p := range People {
		cfg.Users = append(cfg.Users, ldapbind.DirectoryUser{
			Name: p.UID, PasswordHash: hash(t, p.Password), Mail: p.Mail,
			GivenName: p.GivenName, SN: p.SN, UIDNumber: p.UIDNumber,
			Groups: []string{"people"},
		})
	}
	d, err := ldapbind.StartDirectory(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start glauth: %v", err)
	}
	search, err := d.ClientConfig(Search.UID)
	if err != nil {
		t.Fatal(err)
	}
	search.BindPassword = Search.Password
	s := &Server{
		Name:         "glauth",
		URL:          d.URL(),
		SearchConfig: search,
		TemplateConfig: ldapbind.Config{
			URL:            d.URL(),
			UserDNTemplate: "cn={username},ou=people,ou=users," + BaseDN,
			BindDN:         search.BindDN,
			BindPassword:   Search.Password,
		},
		UserDN: d.UserDN,
	}
	s.Stop = func() { d.Close() }
	s.Start = func() {
		if err := d.Restart(context.Background()); err != nil {
			t.Fatalf("restart glauth: %v", err)
		}
	}
	t.Cleanup(func() { d.Close() })
	return s
}

func hash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
