// Package ldapbind checks a password with an LDAP simple bind and reads the
// user's profile attributes, and runs the embedded glauth directory.
//
// It knows nothing of the local users: the decision "local bcrypt first,
// LDAP only without a local password" belongs to the users package.
package ldapbind

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

var (
	// ErrInvalidCredentials is returned for an unknown user, a wrong password
	// and an empty password alike.
	ErrInvalidCredentials = errors.New("ldapbind: invalid credentials")
	// ErrUnavailable is returned when the directory cannot be reached or
	// does not answer in time, or refuses the service account.
	ErrUnavailable = errors.New("ldapbind: directory unavailable")
)

// MaxUsernameLen is the longest username sent to the directory.
const MaxUsernameLen = 256

// DefaultTimeout bounds the connection and each LDAP operation.
const DefaultTimeout = 5 * time.Second

// Config says how to reach the directory and find a user in it.
//
// With UserDNTemplate set, the user's DN is the template with {username}
// replaced by the DN-escaped username (bind-template mode). Otherwise the
// client binds as BindDN, searches BaseDN with UserFilter, whose
// {username} is replaced by the filter-escaped username, and binds as the
// single entry found (search-then-bind mode).
type Config struct {
	URL            string // ldap://host:port or ldaps://host:port
	StartTLS       bool
	CAFile         string // PEM roots for ldaps:// and StartTLS; empty: system roots
	InsecureTLS    bool   // skip certificate verification (test directories only)
	Timeout        time.Duration
	BaseDN         string
	UserFilter     string // e.g. (uid={username})
	BindDN         string // service account for searches
	BindPassword   string
	UserDNTemplate string // e.g. uid={username},ou=people,dc=example,dc=org
}

// Entry is what the directory says of a user after a successful bind.
type Entry struct {
	DN        string
	Username  string // the name the user typed
	Mail      string
	GivenName string
	SN        string
	UIDNumber int64 // 0 when the directory has none
}

var attributes = []string{"mail", "givenName", "sn", "uidNumber"}

// Client authenticates users against one directory. It opens a connection
// per request: a login costs one bcrypt-speed bind anyway, and a fresh
// connection cannot be left bound as the previous user.
type Client struct {
	cfg Config
	tls *tls.Config
}

// New checks cfg and returns a client; it does not connect.
func New(cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("ldapbind: URL %q: want ldap://host:port or ldaps://host:port", cfg.URL)
	}
	if cfg.StartTLS && u.Scheme == "ldaps" {
		return nil, errors.New("ldapbind: StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	}
	if cfg.UserDNTemplate != "" {
		if !strings.Contains(cfg.UserDNTemplate, "{username}") {
			return nil, fmt.Errorf("ldapbind: user DN template %q has no {username}", cfg.UserDNTemplate)
		}
	} else {
		if cfg.BaseDN == "" || !strings.Contains(cfg.UserFilter, "{username}") {
			return nil, errors.New("ldapbind: search-then-bind needs a base DN and a user filter with {username} (or give a user DN template)")
		}
		if _, err := ldap.CompileFilter(strings.ReplaceAll(cfg.UserFilter, "{username}", "x")); err != nil {
			return nil, fmt.Errorf("ldapbind: user filter %q: %w", cfg.UserFilter, err)
		}
	}
	tc := &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: cfg.InsecureTLS, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldapbind: CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldapbind: CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &Client{cfg: cfg, tls: tc}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Authenticate binds as username with password and returns the user's
// entry. It fails with ErrInvalidCredentials (unknown user, wrong or empty
// password, a username the directory must not see) or ErrUnavailable.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Entry, error) {
	// An LDAP simple bind with an empty password is an anonymous bind,
	// which succeeds: refuse it before any network I/O.
	if password == "" || !validUsername(username) || strings.ContainsRune(password, 0) {
		return Entry{}, ErrInvalidCredentials
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	entry, err := c.authenticate(ctx, username, password)
	return entry, c.late(ctx, err)
}

// bound limits a whole exchange with the directory (connect, StartTLS,
// binds, searches) to the configured timeout. When it ends, the
// connections close, which ends whatever waits on them, even steps that
// go-ldap does not time out itself, such as the TLS handshake after
// StartTLS.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// late names the timeout in err when the exchange ran out of time: the
// error go-ldap gives then is only "connection closed".
func (c *Client) late(ctx context.Context, err error) error {
	if err != nil && errors.Is(err, ErrUnavailable) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: no answer within %v (%v)", ErrUnavailable, c.cfg.Timeout, err)
	}
	return err
}

func (c *Client) authenticate(ctx context.Context, username, password string) (Entry, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer conn.close()

	var entry *ldap.Entry
	var dn string
	if c.cfg.UserDNTemplate != "" {
		dn = c.userDN(username)
	} else {
		if entry, err = c.search(conn, username); err != nil {
			return Entry{}, err
		}
		dn = entry.DN
	}
	if err := conn.Bind(dn, password); err != nil {
		return Entry{}, classify("bind as user", err)
	}
	if entry == nil {
		entry = c.readOwnEntry(ctx, conn, dn)
	}
	return toEntry(dn, username, entry), nil
}

// validUsername reports whether username may be sent to the directory at
// all: not empty, not over MaxUsernameLen bytes, no NUL.
func validUsername(username string) bool {
	return username != "" && len(username) <= MaxUsernameLen && !strings.ContainsRune(username, 0)
}

// userDN is the bind DN of username in bind-template mode: the template
// with {username} replaced by the username escaped for a DN (RFC 4514).
func (c *Client) userDN(username string) string {
	return strings.ReplaceAll(c.cfg.UserDNTemplate, "{username}", ldap.EscapeDN(username))
}

// userFilter is the search filter of username in search-then-bind mode:
// the user filter with {username} replaced by the username escaped for a
// filter (RFC 4515).
func (c *Client) userFilter(username string) string {
	return strings.ReplaceAll(c.cfg.UserFilter, "{username}", ldap.EscapeFilter(username))
}

// Ping checks that the directory answers: a connection, and a bind as the
// service account when there is one.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.late(ctx, c.ping(ctx))
}

func (c *Client) ping(ctx context.Context) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.close()
	if c.cfg.BindDN != "" {
		if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
			return serviceBindError(err)
		}
		return nil
	}
	// No account to bind as: the root DSE answers anonymous reads.
	_, err = conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil && isNetwork(err) {
		return classify("ping", err)
	}
	return nil
}

// conn is a connection that closes when the request's context ends.
type conn struct {
	*ldap.Conn
	stop func() bool
}

func (c conn) close() {
	c.stop()
	c.Conn.Close()
}

func (c *Client) dial(ctx context.Context) (conn, error) {
	timeout := c.cfg.Timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	lc, err := ldap.DialURL(c.cfg.URL,
		ldap.DialWithDialer(&net.Dialer{Timeout: timeout}),
		ldap.DialWithTLSConfig(c.tls))
	if err != nil {
		return conn{}, fmt.Errorf("%w: connect to %s: %v", ErrUnavailable, c.cfg.URL, err)
	}
	lc.SetTimeout(timeout)
	// A cancelled request closes the connection, which ends any operation
	// waiting on it.
	cn := conn{Conn: lc, stop: context.AfterFunc(ctx, func() { lc.Close() })}
	if c.cfg.StartTLS {
		if err := lc.StartTLS(c.tls); err != nil {
			cn.close()
			return conn{}, fmt.Errorf("%w: StartTLS with %s: %v", ErrUnavailable, c.cfg.URL, err)
		}
	}
	return cn, nil
}

func (c *Client) search(conn conn, username string) (*ldap.Entry, error) {
	if c.cfg.BindDN != "" {
		if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
			return nil, serviceBindError(err)
		}
	}
	filter := c.userFilter(username)
	res, err := conn.Search(ldap.NewSearchRequest(c.cfg.BaseDN, ldap.ScopeWholeSubtree,
		ldap.NeverDerefAliases, 2, int(c.cfg.Timeout/time.Second), false, filter, attributes, nil))
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, ErrInvalidCredentials
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil, fmt.Errorf("%w: several directory entries match %s", ErrInvalidCredentials, filter)
		}
		if isNetwork(err) {
			return nil, classify("search", err)
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) || ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) {
			// The service account is bound, so the directory is up; it
			// could not process this username's filter (glauth refuses
			// escaped parentheses): no such user.
			return nil, fmt.Errorf("%w: the directory refused the filter %s: %v", ErrInvalidCredentials, filter, err)
		}
		// The service account may not search there: a configuration error.
		return nil, fmt.Errorf("%w: search %s for %s: %v", ErrUnavailable, c.cfg.BaseDN, filter, err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, ErrInvalidCredentials
	case 1:
		return res.Entries[0], nil
	}
	return nil, fmt.Errorf("%w: %d directory entries match %s", ErrInvalidCredentials, len(res.Entries), filter)
}

// readOwnEntry reads the profile attributes in bind-template mode, first
// as the user, then as the service account. A directory that lets neither
// read the entry leaves the profile to the fixtures.
func (c *Client) readOwnEntry(ctx context.Context, userConn conn, dn string) *ldap.Entry {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(c.cfg.Timeout/time.Second), false, "(objectClass=*)", attributes, nil)
	if res, err := userConn.Search(req); err == nil && len(res.Entries) == 1 {
		return res.Entries[0]
	}
	if c.cfg.BindDN == "" {
		return nil
	}
	// A fresh connection: glauth drops the one whose search it refused.
	conn, err := c.dial(ctx)
	if err != nil {
		return nil
	}
	defer conn.close()
	if conn.Bind(c.cfg.BindDN, c.cfg.BindPassword) != nil {
		return nil
	}
	if res, err := conn.Search(req); err == nil && len(res.Entries) == 1 {
		return res.Entries[0]
	}
	return nil
}

func toEntry(dn, username string, e *ldap.Entry) Entry {
	out := Entry{DN: dn, Username: username}
	if e == nil {
		return out
	}
	out.Mail = e.GetAttributeValue("mail")
	out.GivenName = e.GetAttributeValue("givenName")
	out.SN = e.GetAttributeValue("sn")
	if n, err := strconv.ParseInt(e.GetAttributeValue("uidNumber"), 10, 64); err == nil && n > 0 {
		out.UIDNumber = n
	}
	return out
}

func serviceBindError(err error) error {
	if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return fmt.Errorf("%w: the directory refused the service account's bind (check --ldap-bind-dn and --ldap-bind-password)", ErrUnavailable)
	}
	return classify("bind as service account", err)
}

// classify maps an LDAP error to the package's sentinels: a refused bind
// is bad credentials, a network failure or a busy server is unavailable.
func classify(op string, err error) error {
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials),
		ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax),
		ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject),
		ldap.IsErrorWithCode(err, ldap.LDAPResultInappropriateAuthentication),
		ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights),
		ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform),
		ldap.IsErrorWithCode(err, ldap.ErrorEmptyPassword):
		return ErrInvalidCredentials
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

func isNetwork(err error) bool {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == ldap.ErrorNetwork
	}
	return true
}
