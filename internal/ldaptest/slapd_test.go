package ldaptest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
)

func TestSlapd(t *testing.T) {
	begin := time.Now()
	s := ldaptest.StartSlapd(t)
	t.Logf("slapd started in %v", time.Since(begin))

	modes := map[string]ldapbind.Config{"search": s.SearchConfig, "template": s.TemplateConfig}
	for name, cfg := range modes {
		t.Run(name, func(t *testing.T) {
			c, err := ldapbind.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			bob := ldaptest.Bob
			e, err := c.Authenticate(context.Background(), bob.UID, bob.Password)
			if err != nil {
				t.Fatalf("bob: %v", err)
			}
			want := ldapbind.Entry{DN: s.UserDN(bob.UID), Username: bob.UID, Mail: bob.Mail,
				GivenName: bob.GivenName, SN: bob.SN, UIDNumber: int64(bob.UIDNumber)}
			if e != want {
				t.Errorf("bob: entry %+v, want %+v", e, want)
			}
			if _, err := c.Authenticate(context.Background(), bob.UID, "not-"+bob.Password); !errors.Is(err, ldapbind.ErrInvalidCredentials) {
				t.Errorf("wrong password: err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
}

func TestSlapdStopStart(t *testing.T) {
	s := ldaptest.StartSlapd(t)
	c, err := ldapbind.New(s.SearchConfig)
	if err != nil {
		t.Fatal(err)
	}
	bob := ldaptest.Bob
	s.Stop()
	if _, err := c.Authenticate(context.Background(), bob.UID, bob.Password); !errors.Is(err, ldapbind.ErrUnavailable) {
		t.Fatalf("slapd stopped: err = %v, want ErrUnavailable", err)
	}
	begin := time.Now()
	s.Start()
	t.Logf("slapd restarted in %v", time.Since(begin))
	if _, err := c.Authenticate(context.Background(), bob.UID, bob.Password); err != nil {
		t.Fatalf("slapd started again: %v", err)
	}
}

// The ACLs: anonymous clients see no one, the service account finds people
// but no password hash, a user reads their own entry.
func TestSlapdAccess(t *testing.T) {
	s := ldaptest.StartSlapd(t)
	search := func(t *testing.T, bindDN, password, base string, scope int) []*ldap.Entry {
		t.Helper()
		conn, err := ldap.DialURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if bindDN != "" {
			if err := conn.Bind(bindDN, password); err != nil {
				t.Fatalf("bind as %s: %v", bindDN, err)
			}
		}
		res, err := conn.Search(ldap.NewSearchRequest(base, scope,
			ldap.NeverDerefAliases, 0, 0, false, "(uid=*)", []string{"uid", "mail", "userPassword"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Fatalf("search as %q: %v", bindDN, err)
		}
		if res == nil {
			return nil
		}
		return res.Entries
	}

	if got := search(t, "", "", ldaptest.BaseDN, ldap.ScopeWholeSubtree); len(got) != 0 {
		t.Errorf("anonymous search found %d entries, want none", len(got))
	}

	svc := s.SearchConfig
	got := search(t, svc.BindDN, svc.BindPassword, svc.BaseDN, ldap.ScopeWholeSubtree)
	people := 0
	for _, e := range got {
		if e.GetAttributeValue("userPassword") != "" {
			t.Errorf("the service account reads the password of %s", e.DN)
		}
		if e.GetAttributeValue("mail") != "" {
			people++
		}
	}
	if people != len(ldaptest.People) {
		t.Errorf("the service account found %d people with mail, want %d", people, len(ldaptest.People))
	}

	bob, carol := ldaptest.Bob, ldaptest.Carol
	got = search(t, s.UserDN(bob.UID), bob.Password, s.UserDN(bob.UID), ldap.ScopeBaseObject)
	if len(got) != 1 || got[0].GetAttributeValue("mail") != bob.Mail {
		t.Errorf("bob reading his entry: %d entries, want his own with his mail", len(got))
	}
	if got := search(t, s.UserDN(bob.UID), bob.Password, s.UserDN(carol.UID), ldap.ScopeBaseObject); len(got) != 0 {
		t.Errorf("bob reads carol's entry")
	}
}
