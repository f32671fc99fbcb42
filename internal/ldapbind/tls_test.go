package ldapbind_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
)

// tlsTransports are the two ways to speak TLS to a directory.
var tlsTransports = []struct {
	name     string
	url      func(ldaptest.TLSInfo) string
	startTLS bool
}{
	{"ldaps", func(i ldaptest.TLSInfo) string { return i.LDAPSURL }, false},
	{"starttls", func(i ldaptest.TLSInfo) string { return i.StartTLSURL }, true},
}

// forEachTLSMode runs test for ldaps:// and StartTLS, in search and
// template modes, against one slapd with TLS, with a config that has the
// transport's URL and StartTLS set and the TLS settings of tls applied.
func forEachTLSMode(t *testing.T, tls func(*ldapbind.Config, ldaptest.TLSInfo), test func(t *testing.T, cfg ldapbind.Config)) {
	s, info := ldaptest.StartSlapdTLS(t)
	for _, tr := range tlsTransports {
		for _, m := range modes {
			t.Run(tr.name+"/"+m.name, func(t *testing.T) {
				cfg := m.config(s)
				cfg.URL = tr.url(info)
				cfg.StartTLS = tr.startTLS
				cfg.Timeout = 2 * time.Second
				tls(&cfg, info)
				test(t, cfg)
			})
		}
	}
}

func newTLSClient(t *testing.T, cfg ldapbind.Config) *ldapbind.Client {
	t.Helper()
	c, err := ldapbind.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSTrustedCA(t *testing.T) {
	bob := ldaptest.Bob
	trustCA := func(cfg *ldapbind.Config, info ldaptest.TLSInfo) { cfg.CAFile = info.CAFile }
	forEachTLSMode(t, trustCA, func(t *testing.T, cfg ldapbind.Config) {
		c := newTLSClient(t, cfg)
		e, err := c.Authenticate(context.Background(), bob.UID, bob.Password)
		if err != nil {
			t.Fatalf("bob over %s: %v", cfg.URL, err)
		}
		if e.Mail != bob.Mail || e.UIDNumber != int64(bob.UIDNumber) {
			t.Errorf("bob: entry %+v, want the directory's %+v", e, bob)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Errorf("ping: %v", err)
		}
		// TLS does not turn a refused bind into an outage.
		_, err = c.Authenticate(context.Background(), bob.UID, "not-"+bob.Password)
		if !errors.Is(err, ldapbind.ErrInvalidCredentials) || errors.Is(err, ldapbind.ErrUnavailable) {
			t.Errorf("wrong password: err = %v, want only ErrInvalidCredentials", err)
		}
	})
}

// A server certificate no configured CA signed is an outage, never a bad
// password, and the error says why.
func TestTLSUntrustedCA(t *testing.T) {
	untrusted := ldaptest.UntrustedCAFile(t)
	otherCA := func(cfg *ldapbind.Config, _ ldaptest.TLSInfo) { cfg.CAFile = untrusted }
	forEachTLSMode(t, otherCA, func(t *testing.T, cfg ldapbind.Config) {
		c := newTLSClient(t, cfg)
		for _, pw := range []string{ldaptest.Bob.Password, "not-" + ldaptest.Bob.Password} {
			_, err := c.Authenticate(context.Background(), ldaptest.Bob.UID, pw)
			if !errors.Is(err, ldapbind.ErrUnavailable) || errors.Is(err, ldapbind.ErrInvalidCredentials) {
				t.Fatalf("password %q: err = %v, want only ErrUnavailable", pw, err)
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("err = %v, want it to mention the certificate", err)
			}
		}
		if err := c.Ping(context.Background()); !errors.Is(err, ldapbind.ErrUnavailable) {
			t.Errorf("ping: err = %v, want ErrUnavailable", err)
		}
	})
}

func TestTLSInsecureSkipsVerification(t *testing.T) {
	bob := ldaptest.Bob
	insecure := func(cfg *ldapbind.Config, _ ldaptest.TLSInfo) { cfg.InsecureTLS = true }
	forEachTLSMode(t, insecure, func(t *testing.T, cfg ldapbind.Config) {
		c := newTLSClient(t, cfg)
		if _, err := c.Authenticate(context.Background(), bob.UID, bob.Password); err != nil {
			t.Fatalf("bob over %s without verification: %v", cfg.URL, err)
		}
		_, err := c.Authenticate(context.Background(), bob.UID, "not-"+bob.Password)
		if !errors.Is(err, ldapbind.ErrInvalidCredentials) {
			t.Errorf("wrong password: err = %v, want ErrInvalidCredentials", err)
		}
	})
}

// Without InsecureTLS or a CA file the system roots apply, and they do not
// hold the throw-away CA.
func TestTLSSystemRootsRefuseTheTestCA(t *testing.T) {
	none := func(*ldapbind.Config, ldaptest.TLSInfo) {}
	forEachTLSMode(t, none, func(t *testing.T, cfg ldapbind.Config) {
		_, err := newTLSClient(t, cfg).Authenticate(context.Background(), ldaptest.Bob.UID, ldaptest.Bob.Password)
		if !errors.Is(err, ldapbind.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want ErrUnavailable about the certificate", err)
		}
	})
}

// A client that requires StartTLS must not fall back to plain LDAP when the
// directory does not offer it.
func TestStartTLSRequiredButUnsupported(t *testing.T) {
	s := ldaptest.StartGlauth(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.config(s)
			cfg.StartTLS = true
			cfg.InsecureTLS = true
			cfg.Timeout = 2 * time.Second
			c := newTLSClient(t, cfg)
			begin := time.Now()
			_, err := c.Authenticate(context.Background(), ldaptest.Bob.UID, ldaptest.Bob.Password)
			if !errors.Is(err, ldapbind.ErrUnavailable) || errors.Is(err, ldapbind.ErrInvalidCredentials) {
				t.Fatalf("err = %v, want only ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "StartTLS") {
				t.Errorf("err = %v, want it to name StartTLS", err)
			}
			t.Logf("refused in %v: %v", time.Since(begin), err)
			if err := c.Ping(context.Background()); !errors.Is(err, ldapbind.ErrUnavailable) {
				t.Errorf("ping: err = %v, want ErrUnavailable", err)
			}
		})
	}
}
