package ldapbind

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// FuzzUserFilter: whatever the username, the search filter built from it
// compiles, keeps the configured structure, and asks the directory for
// exactly that username: no character of it acts as a filter operator
// (RFC 4515). A username Authenticate refuses never gets here.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"bob", "*", "bob)(uid=*", "*)(|(uid=*", `\2a`, `a\`, "(", ")", "é", "\xff\xfe", "a\x00b", " bob ", strings.Repeat("x", MaxUsernameLen+1)} {
		f.Add(s)
	}
	c, err := New(Config{URL: "ldap://127.0.0.1:1", BaseDN: "dc=ircam,dc=fr",
		UserFilter: "(&(objectClass=posixAccount)(uid={username}))"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, username string) {
		if !validUsername(username) {
			return
		}
		filter := c.userFilter(username)
		escaped := strings.TrimSuffix(strings.TrimPrefix(filter, "(&(objectClass=posixAccount)(uid="), "))")
		if strings.ContainsAny(escaped, "*()\x00") {
			t.Fatalf("filter %q holds an unescaped special character", filter)
		}
		p, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("filter %q does not compile: %v", filter, err)
		}
		if p.Tag != ldap.FilterAnd || len(p.Children) != 2 {
			t.Fatalf("filter %q is not the configured AND of two", filter)
		}
		eq := p.Children[1]
		if eq.Tag != ldap.FilterEqualityMatch || len(eq.Children) != 2 {
			t.Fatalf("filter %q: the uid part is not an equality match (tag %d)", filter, eq.Tag)
		}
		if attr, value := eq.Children[0].Data.String(), eq.Children[1].Data.String(); attr != "uid" || value != username {
			t.Fatalf("filter %q asks for %s=%q, want uid=%q", filter, attr, value, username)
		}
	})
}

// FuzzUserDN: whatever the username, the bind DN built from the template
// parses (RFC 4514), has the template's RDNs, and names exactly that
// username in its first RDN. (A username that is not UTF-8 is sent as it
// is: go-ldap's parser reads its bad bytes as U+FFFD, so only the
// structure is checked then.)
func FuzzUserDN(f *testing.F) {
	for _, s := range []string{"bob", "bob,ou=admins", "a=b", "#bob", " bob", "bob ", `a\`, `\2c`, "+", "a+cn=x", "<>;\"", "é", "\xff", "\x01"} {
		f.Add(s)
	}
	c, err := New(Config{URL: "ldap://127.0.0.1:1", UserDNTemplate: "uid={username},ou=people,dc=ircam,dc=fr"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, username string) {
		if !validUsername(username) {
			return
		}
		dn := c.userDN(username)
		parsed, err := ldap.ParseDN(dn)
		if err != nil {
			t.Fatalf("DN %q does not parse: %v", dn, err)
		}
		if len(parsed.RDNs) != 4 {
			t.Fatalf("DN %q has %d RDNs, want the template's 4", dn, len(parsed.RDNs))
		}
		first := parsed.RDNs[0].Attributes
		if len(first) != 1 || first[0].Type != "uid" || (first[0].Value != username && utf8.ValidString(username)) {
			t.Fatalf("DN %q names %+v, want uid=%q", dn, first, username)
		}
		if got := parsed.RDNs[1].Attributes[0]; got.Type != "ou" || got.Value != "people" {
			t.Fatalf("DN %q: second RDN %+v", dn, got)
		}
	})
}
