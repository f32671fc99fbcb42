// Package throttle limits failed logins, per username and per client
// address, so that passwords cannot be guessed at the speed of the
// network.
//
// A Guard stands in front of the password check. Once a username (case-
// insensitively) or a client address has had too many failed logins
// within the window, further logins for it are refused with
// ErrTooManyAttempts without checking the password at all: no bcrypt, and
// no LDAP bind, so that a directory account cannot be locked out by the
// directory's own policy because of us. Refused attempts do not count as
// failures (the lockout ends on time whatever an attacker keeps sending);
// a directory outage is not a failure; a successful login resets the
// username's count (not the address's, or an attacker with one account
// could reset it).
//
// The client address is the host of the request's RemoteAddr (headers such
// as X-Forwarded-For are not trusted); IPv6 addresses count per /64, the
// block one subscriber usually gets.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ircam/ircam-auth/internal/users"
)

// Defaults: generous enough for a person who mistypes and for a CI suite
// that tests wrong passwords from one address, tight enough to stop a
// guessing script.
const (
	DefaultMaxFailuresPerUser = 10
	DefaultMaxFailuresPerIP   = 100
	DefaultWindow             = 5 * time.Minute
	// DefaultMaxKeys bounds the usernames and the addresses remembered.
	DefaultMaxKeys = 10000
)

// maxKeyLen bounds the length of a username kept as a key.
const maxKeyLen = 256

// ErrTooManyAttempts is returned, wrapped in an *Error, for a login refused
// without a password check. Check it with errors.Is.
var ErrTooManyAttempts = errors.New("too many failed login attempts")

// Error is a login refused by the throttle.
type Error struct {
	// Limit is "user" or "ip": the limit that was reached.
	Limit string
	// RetryAfter is how long until a login may be tried again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("throttle: too many failed login attempts for this %s; try again in %s", e.Limit, InMinutes(e.RetryAfter))
}

// Is makes errors.Is(err, ErrTooManyAttempts) true.
func (e *Error) Is(target error) bool { return target == ErrTooManyAttempts }

// RetryAfter returns how long until a login refused with err may be tried
// again, and 0 when err is not a throttle refusal.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// InMinutes says d in whole minutes, rounded up: "1 minute", "5 minutes".
func InMinutes(d time.Duration) string {
	n := int((d + time.Minute - 1) / time.Minute)
	if n <= 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// InSeconds says d in whole seconds, rounded up: the value of a
// Retry-After header.
func InSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// Authenticator checks a password; *users.Store is one.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (users.User, users.Method, error)
}

// Config holds the limits and dependencies of a Guard.
type Config struct {
	// MaxFailuresPerUser is the failed logins allowed per username within
	// Window; 0: no per-username limit.
	MaxFailuresPerUser int
	// MaxFailuresPerIP is the failed logins allowed per client address
	// within Window; 0: no per-address limit.
	MaxFailuresPerIP int
	Window           time.Duration    // 0: DefaultWindow
	MaxKeys          int              // per limit; 0: DefaultMaxKeys
	Now              func() time.Time // nil: time.Now
	Logger           *slog.Logger     // nil: discard
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFailuresPerUser < 0 {
		errs = append(errs, errors.New("MaxFailuresPerUser must not be negative"))
	}
	if c.MaxFailuresPerIP < 0 {
		errs = append(errs, errors.New("MaxFailuresPerIP must not be negative"))
	}
	if c.Window < 0 {
		errs = append(errs, errors.New("Window must not be negative"))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, errors.New("MaxKeys must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("throttle: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Guard refuses logins after too many failures. A nil *Guard, or one with
// no limits, only checks passwords.
type Guard struct {
	byUser *Limiter
	byIP   *Limiter
	log    *slog.Logger
}

// New checks cfg and returns a Guard.
func New(cfg Config) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{
		byUser: NewLimiter(cfg.MaxFailuresPerUser, cfg.Window, cfg.MaxKeys, cfg.Now),
		byIP:   NewLimiter(cfg.MaxFailuresPerIP, cfg.Window, cfg.MaxKeys, cfg.Now),
		log:    cfg.Logger,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g, nil
}

// Authenticate checks the password with a, unless the username or the
// client address (remoteAddr, as in http.Request) has reached its limit of
// failures: then it returns an *Error (ErrTooManyAttempts) and a is not
// called. An ErrInvalidCredentials answer counts as a failure for both;
// a success resets the username's count.
func (g *Guard) Authenticate(ctx context.Context, a Authenticator, remoteAddr, username, password string) (users.User, users.Method, error) {
	if g == nil {
		return a.Authenticate(ctx, username, password)
	}
	user, ip := UserKey(username), ClientKey(remoteAddr)
	if ok, retry := g.byUser.Acquire(user); !ok {
		return g.refuse(ctx, "user", retry, username, ip)
	}
	if ok, retry := g.byIP.Acquire(ip); !ok {
		g.byUser.Release(user, false)
		return g.refuse(ctx, "ip", retry, username, ip)
	}
	failed := true // a panic in a counts as a failure
	defer func() {
		g.byUser.Release(user, failed)
		g.byIP.Release(ip, failed)
	}()
	u, method, err := a.Authenticate(ctx, username, password)
	failed = errors.Is(err, users.ErrInvalidCredentials)
	if err == nil {
		g.byUser.Reset(user)
	}
	return u, method, err
}

func (g *Guard) refuse(ctx context.Context, limit string, retry time.Duration, username, ip string) (users.User, users.Method, error) {
	g.log.WarnContext(ctx, "login throttled: too many failed attempts", "user", truncate(username),
		"client_ip", ip, "limit", limit, "retry_after", retry.Round(time.Second).String())
	return users.User{}, "", &Error{Limit: limit, RetryAfter: retry}
}

// UserKey is the key a username is counted under: lower case, spaces
// trimmed and collapsed (directories compare names that way too), bounded.
func UserKey(username string) string {
	return truncate(strings.Join(strings.Fields(strings.ToLower(username)), " "))
}

// ClientKey is the key a client address is counted under: the host of
// remoteAddr, an IPv6 address reduced to its /64.
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return truncate(host)
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func truncate(s string) string {
	if len(s) > maxKeyLen {
		return s[:maxKeyLen]
	}
	return s
}
