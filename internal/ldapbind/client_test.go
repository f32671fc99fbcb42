package ldapbind_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
)

// starters are the real directories every test runs against.
var starters = []struct {
	name  string
	start func(testing.TB) *ldaptest.Server
}{
	{"glauth", ldaptest.StartGlauth},
	{"slapd", ldaptest.StartSlapd},
}

// modes are the two ways to find a user's DN.
var modes = []struct {
	name   string
	config func(*ldaptest.Server) ldapbind.Config
}{
	{"search", func(s *ldaptest.Server) ldapbind.Config { return s.SearchConfig }},
	{"template", func(s *ldaptest.Server) ldapbind.Config { return s.TemplateConfig }},
}

func forEachDirectory(t *testing.T, test func(t *testing.T, s *ldaptest.Server, c *ldapbind.Client)) {
	for _, st := range starters {
		t.Run(st.name, func(t *testing.T) {
			s := st.start(t)
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) {
					cfg := m.config(s)
					cfg.Timeout = 2 * time.Second
					c, err := ldapbind.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					test(t, s, c)
				})
			}
		})
	}
}

func TestAuthenticateGoodPassword(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, c *ldapbind.Client) {
		for _, p := range ldaptest.People {
			e, err := c.Authenticate(context.Background(), p.UID, p.Password)
			if err != nil {
				t.Fatalf("%s: %v", p.UID, err)
			}
			if !strings.EqualFold(e.DN, s.UserDN(p.UID)) {
				t.Errorf("%s: DN %q, want %q", p.UID, e.DN, s.UserDN(p.UID))
			}
			if e.Mail != p.Mail || e.GivenName != p.GivenName || e.SN != p.SN || e.UIDNumber != int64(p.UIDNumber) {
				t.Errorf("%s: entry %+v, want the directory's %+v", p.UID, e, p)
			}
		}
	})
}

func TestAuthenticateRefused(t *testing.T) {
	bob := ldaptest.Bob
	cases := []struct{ name, user, password string }{
		{"wrong password", bob.UID, "not-" + bob.Password},
		{"unknown user", "nobody", bob.Password},
		{"empty password", bob.UID, ""},
		{"empty username", "", bob.Password},
		{"another user's password", bob.UID, ldaptest.Carol.Password},
		{"filter wildcard", "*", bob.Password},
		{"filter injection", "bob)(uid=*", bob.Password},
		{"filter injection cn", "bob)(cn=*", bob.Password},
		{"DN injection", "bob,ou=x", bob.Password},
		{"DN equals", "cn=bob", bob.Password},
		{"NUL byte", "bob\x00", bob.Password},
		{"too long", strings.Repeat("b", ldapbind.MaxUsernameLen+1), bob.Password},
		{"service account as user, wrong password", ldaptest.Search.UID, "x"},
	}
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, c *ldapbind.Client) {
		for _, tc := range cases {
			_, err := c.Authenticate(context.Background(), tc.user, tc.password)
			if !errors.Is(err, ldapbind.ErrInvalidCredentials) {
				t.Errorf("%s: err = %v, want ErrInvalidCredentials", tc.name, err)
			}
		}
	})
}

// An empty password must be refused before any network I/O: the client
// points at a port where nothing listens, and still answers "invalid
// credentials", not "unavailable".
func TestEmptyPasswordNeverReachesTheDirectory(t *testing.T) {
	c, err := ldapbind.New(ldapbind.Config{URL: "ldap://" + closedAddr(t), UserDNTemplate: "uid={username},dc=x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(context.Background(), "bob", ""); !errors.Is(err, ldapbind.ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
	if _, err := c.Authenticate(context.Background(), "bob", "pw"); !errors.Is(err, ldapbind.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable (nothing listens)", err)
	}
}

func TestDirectoryDownThenBack(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, s *ldaptest.Server, c *ldapbind.Client) {
		s.Stop()
		_, err := c.Authenticate(context.Background(), ldaptest.Bob.UID, ldaptest.Bob.Password)
		if !errors.Is(err, ldapbind.ErrUnavailable) || errors.Is(err, ldapbind.ErrInvalidCredentials) {
			t.Fatalf("directory down: err = %v, want only ErrUnavailable", err)
		}
		if err := c.Ping(context.Background()); !errors.Is(err, ldapbind.ErrUnavailable) {
			t.Errorf("ping with the directory down: %v", err)
		}
		s.Start()
		if _, err := c.Authenticate(context.Background(), ldaptest.Bob.UID, ldaptest.Bob.Password); err != nil {
			t.Fatalf("directory back: %v", err)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
}

func TestWrongServiceAccountIsUnavailableNotBadPassword(t *testing.T) {
	s := ldaptest.StartGlauth(t)
	cfg := s.SearchConfig
	cfg.BindPassword = "wrong"
	c, err := ldapbind.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Authenticate(context.Background(), ldaptest.Bob.UID, ldaptest.Bob.Password)
	if !errors.Is(err, ldapbind.ErrUnavailable) || !strings.Contains(err.Error(), "service account") {
		t.Fatalf("err = %v, want ErrUnavailable naming the service account", err)
	}
}

// A server that accepts connections and never answers must not hang a
// login past the timeout.
func TestSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, err := ldapbind.New(ldapbind.Config{URL: "ldap://" + ln.Addr().String(), UserDNTemplate: "uid={username},dc=x", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Authenticate(context.Background(), "bob", "pw")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ldapbind.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	case <-time.After(30 * time.Second): // a hang, not a slow machine
		t.Fatal("Authenticate did not return: the timeout is not applied")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  ldapbind.Config
		want string
	}{
		{"bad scheme", ldapbind.Config{URL: "http://x", UserDNTemplate: "uid={username}"}, "want ldap://"},
		{"no host", ldapbind.Config{URL: "ldap://", UserDNTemplate: "uid={username}"}, "want ldap://"},
		{"template without placeholder", ldapbind.Config{URL: "ldap://x", UserDNTemplate: "uid=bob"}, "no {username}"},
		{"search without filter", ldapbind.Config{URL: "ldap://x", BaseDN: "dc=x"}, "user filter"},
		{"bad filter", ldapbind.Config{URL: "ldap://x", BaseDN: "dc=x", UserFilter: "(uid={username}"}, "user filter"},
		{"starttls on ldaps", ldapbind.Config{URL: "ldaps://x", StartTLS: true, UserDNTemplate: "uid={username}"}, "StartTLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ldapbind.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
