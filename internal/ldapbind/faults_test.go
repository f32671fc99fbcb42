package ldapbind_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
	"golang.org/x/crypto/bcrypt"
)

func mustHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// The ways a directory fails that a login must survive.
var faults = []struct {
	name   string
	handle func(net.Conn)
}{
	{"silent", ldaptest.Silent},
	{"closes at once", func(c net.Conn) { c.Close() }},
	{"closes mid-bind", ldaptest.ClosesMidBind},
	// Accepts StartTLS, then never starts the TLS handshake.
	{"silent after StartTLS", func(c net.Conn) {
		p, err := ber.ReadPacket(c)
		if err != nil || len(p.Children) < 1 {
			return
		}
		resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
		resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, p.Children[0].Value, "MessageID"))
		ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 24, nil, "Extended Response")
		ext.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
		ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
		ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnosticMessage"))
		resp.AppendChild(ext)
		c.Write(resp.Bytes())
		io.Copy(io.Discard, c)
	}},
}

// within runs f and fails the test if it has not returned after a long
// time: a hang, not a slow machine. It is no timing assertion.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return: the directory timeout is not applied", what)
		return nil
	}
}

// A directory that hangs or drops connections makes a login fail with
// ErrUnavailable, never hang it and never read as a wrong password; so
// does the health check.
func TestDirectoryFaults(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			url := "ldap://" + ldaptest.FaultServer(t, f.handle)
			configs := map[string]ldapbind.Config{
				"template": {URL: url, UserDNTemplate: "uid={username},dc=x"},
				"search": {URL: url, BaseDN: "dc=x", UserFilter: "(uid={username})",
					BindDN: "cn=reader,dc=x", BindPassword: "pw"},
			}
			for name, cfg := range configs {
				t.Run(name, func(t *testing.T) {
					cfg.Timeout = 300 * time.Millisecond
					cfg.StartTLS = f.name == "silent after StartTLS"
					cfg.InsecureTLS = true
					c, err := ldapbind.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					err = within(t, "Authenticate", func() error {
						_, err := c.Authenticate(context.Background(), "bob", "pw")
						return err
					})
					if !errors.Is(err, ldapbind.ErrUnavailable) || errors.Is(err, ldapbind.ErrInvalidCredentials) {
						t.Errorf("Authenticate: %v, want only ErrUnavailable", err)
					}
					err = within(t, "Ping", func() error { return c.Ping(context.Background()) })
					if !errors.Is(err, ldapbind.ErrUnavailable) {
						t.Errorf("Ping: %v, want ErrUnavailable", err)
					}
				})
			}
		})
	}
}

// The embedded directory stops and starts again on the same address, and
// clients recover on their own: they connect per login.
func TestDirectoryRestart(t *testing.T) {
	dir, err := ldapbind.StartDirectory(context.Background(), ldapbind.DirectoryConfig{
		Listen: "127.0.0.1:0", BaseDN: ldaptest.BaseDN,
		Groups: []ldapbind.DirectoryGroup{{Name: "people", GID: 5501}},
		Users:  []ldapbind.DirectoryUser{{Name: "bob", PasswordHash: mustHash(t, "bob-pw"), Groups: []string{"people"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	c, err := ldapbind.New(ldapbind.Config{URL: dir.URL(), UserDNTemplate: "cn={username},ou=people,ou=users," + ldaptest.BaseDN, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	login := func() error {
		return within(t, "Authenticate", func() error {
			_, err := c.Authenticate(context.Background(), "bob", "bob-pw")
			return err
		})
	}
	if err := login(); err != nil {
		t.Fatalf("before the stop: %v", err)
	}
	addr := dir.Addr()
	for i := range 2 {
		dir.Close()
		dir.Close() // twice is harmless
		if err := login(); !errors.Is(err, ldapbind.ErrUnavailable) {
			t.Fatalf("stopped (%d): %v, want ErrUnavailable", i, err)
		}
		if err := dir.Restart(context.Background()); err != nil {
			t.Fatalf("restart (%d): %v", i, err)
		}
		if err := dir.Restart(context.Background()); err != nil {
			t.Fatalf("restart of a running directory: %v", err)
		}
		if dir.Addr() != addr {
			t.Errorf("restarted on %s, want %s", dir.Addr(), addr)
		}
		if err := login(); err != nil {
			t.Fatalf("after the restart (%d): %v", i, err)
		}
	}
}
