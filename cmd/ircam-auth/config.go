package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	defaultfixtures "github.com/ircam/ircam-auth/fixtures"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/throttle"
	"golang.org/x/crypto/bcrypt"
)

// envPrefix starts the environment twin of every flag: --ldap-url is
// IRCAM_AUTH_LDAP_URL.
const envPrefix = "IRCAM_AUTH_"

// config is everything the server is started with.
type config struct {
	Fixtures  string
	Listen    string
	PublicURL string
	LogFormat string
	LogLevel  string

	LDAPListen         string
	LDAPURL            string
	LDAPBaseDN         string
	LDAPUserFilter     string
	LDAPBindDN         string
	LDAPBindPassword   string
	LDAPUserDNTemplate string
	LDAPStartTLS       bool
	LDAPCAFile         string
	LDAPInsecureTLS    bool
	LDAPTimeout        time.Duration

	BcryptCost     int
	AccessTokenTTL time.Duration
	CodeTTL        time.Duration
	PKCERequired   bool
	AdminToken     string

	// TokenFile keeps codes and tokens across restarts; "": memory only.
	TokenFile string

	// Failed-login throttling (internal/throttle); 0 disables a limit.
	LoginMaxFailuresPerUser int
	LoginMaxFailuresPerIP   int
	LoginFailureWindow      time.Duration
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet declares the server's flags on cfg.
func newFlagSet(cfg *config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ircam-auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Fixtures, "fixtures", "", "fixture file (YAML); empty: the built-in "+defaultfixtures.DefaultName)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "HTTP listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "browser-facing base URL when behind a proxy or in a container (e.g. http://localhost:9000); empty: relative URLs")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")

	fs.StringVar(&cfg.LDAPListen, "ldap-listen", "127.0.0.1:3893", "listen address of the embedded LDAP directory (when --ldap-url is empty)")
	fs.StringVar(&cfg.LDAPURL, "ldap-url", "", "external LDAP directory, ldap://host:port or ldaps://host:port; empty: start the embedded one")
	fs.StringVar(&cfg.LDAPBaseDN, "ldap-base-dn", "", "search base for users (search-then-bind)")
	fs.StringVar(&cfg.LDAPUserFilter, "ldap-user-filter", "(uid={username})", "user search filter (search-then-bind); {username} is replaced by the escaped username")
	fs.StringVar(&cfg.LDAPBindDN, "ldap-bind-dn", "", "service account DN for searches")
	fs.StringVar(&cfg.LDAPBindPassword, "ldap-bind-password", "", "service account password")
	fs.StringVar(&cfg.LDAPUserDNTemplate, "ldap-user-dn-template", "", "bind DN template instead of a search, e.g. uid={username},ou=people,dc=example,dc=org")
	fs.BoolVar(&cfg.LDAPStartTLS, "ldap-starttls", false, "upgrade ldap:// connections with StartTLS")
	fs.StringVar(&cfg.LDAPCAFile, "ldap-ca-file", "", "PEM file of CA certificates for ldaps:// and StartTLS; empty: system roots")
	fs.BoolVar(&cfg.LDAPInsecureTLS, "ldap-insecure-skip-verify", false, "do not verify the directory's TLS certificate (test directories only)")
	fs.DurationVar(&cfg.LDAPTimeout, "ldap-timeout", ldapbind.DefaultTimeout, "time allowed for a whole LDAP exchange of a login or health check (connect, StartTLS, binds, search); past it the directory is \"unavailable\"")

	fs.IntVar(&cfg.BcryptCost, "bcrypt-cost", fixtures.DefaultBcryptCost, "bcrypt cost for plain-text fixture passwords")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", 36000*time.Second, "lifetime of access tokens")
	fs.DurationVar(&cfg.CodeTTL, "code-ttl", 60*time.Second, "lifetime of authorization codes")
	fs.BoolVar(&cfg.PKCERequired, "pkce-required", false, "refuse authorization requests without a PKCE code_challenge")
	fs.StringVar(&cfg.TokenFile, "token-file", "", "keep codes and tokens (SHA-256 hashes only) in this file across restarts; empty: memory only")

	fs.IntVar(&cfg.LoginMaxFailuresPerUser, "login-max-failures-per-user", throttle.DefaultMaxFailuresPerUser, "failed logins (login form and password grant) allowed per username, case-insensitively, within --login-failure-window; then refused with 429 without checking the password; 0: no limit")
	fs.IntVar(&cfg.LoginMaxFailuresPerIP, "login-max-failures-per-ip", throttle.DefaultMaxFailuresPerIP, "failed logins allowed per client address (the connection's, IPv6 per /64; X-Forwarded-For is not trusted) within --login-failure-window; 0: no limit")
	fs.DurationVar(&cfg.LoginFailureWindow, "login-failure-window", throttle.DefaultWindow, "sliding window of the failed-login limits")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "enables the /admin/ test-control endpoints, which need this Bearer token (16 characters or more); empty: off")
	fs.Usage = func() { usage(fs) }
	return fs
}

func usage(fs *flag.FlagSet) {
	w := tabwriter.NewWriter(fs.Output(), 0, 4, 2, ' ', 0)
	fmt.Fprint(w, `ircam-auth: a stand-in for the Ircam Auth OAuth2 identity provider.

Usage:
  ircam-auth [flags]                 run the server
  ircam-auth hash-password [--cost N] print the bcrypt hash of a password read from stdin
  ircam-auth check-fixtures FILE     validate a fixture file
  ircam-auth healthcheck [--listen ADDR] [--wait D]
                                     exit 0 when the server's /healthz answers 200
  ircam-auth glauth-config [--fixtures FILE]
                                     print a glauth configuration seeded like the embedded directory

Flags (each has an environment variable; a flag given on the command line wins):
`)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s\t%s\tdefault %s\n\t%s\n", f.Name, envName(f.Name), def, f.Usage)
	})
	w.Flush()
}

// parseConfig reads flags, then the IRCAM_AUTH_* environment for flags not
// given, then defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := newFlagSet(&cfg, stderr)
	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return cfg, cfg.validate()
}

// validate reports every problem of the configuration at once.
func (c config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	_, _, err := net.SplitHostPort(c.Listen)
	check(err == nil, "--listen %q: want host:port", c.Listen)
	if c.LDAPURL == "" {
		_, _, err := net.SplitHostPort(c.LDAPListen)
		check(err == nil, "--ldap-listen %q: want host:port", c.LDAPListen)
	} else {
		check(c.LDAPUserDNTemplate != "" || c.LDAPBaseDN != "",
			"--ldap-url needs --ldap-base-dn (search-then-bind) or --ldap-user-dn-template")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "",
			"--public-url %q: want http(s)://host[:port][/path]", c.PublicURL)
	}
	check(c.LogFormat == "text" || c.LogFormat == "json", "--log-format %q: want text or json", c.LogFormat)
	_, lerr := parseLevel(c.LogLevel)
	check(lerr == nil, "--log-level %q: want debug, info, warn or error", c.LogLevel)
	check(c.BcryptCost >= bcrypt.MinCost && c.BcryptCost <= bcrypt.MaxCost,
		"--bcrypt-cost %d: want %d to %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	check(c.LDAPTimeout > 0, "--ldap-timeout must be positive")
	check(c.AccessTokenTTL > 0, "--access-token-ttl must be positive")
	check(c.CodeTTL > 0, "--code-ttl must be positive")
	check(c.LoginMaxFailuresPerUser >= 0, "--login-max-failures-per-user must not be negative")
	check(c.LoginMaxFailuresPerIP >= 0, "--login-max-failures-per-ip must not be negative")
	check(c.LoginFailureWindow > 0 || (c.LoginMaxFailuresPerUser == 0 && c.LoginMaxFailuresPerIP == 0),
		"--login-failure-window must be positive")
	check(c.AdminToken == "" || len(c.AdminToken) >= 16, "--admin-token must be at least 16 characters")
	return errors.Join(errs...)
}
