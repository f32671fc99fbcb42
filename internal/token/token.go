// Package token serves the token endpoint (/o/token/: authorization_code
// with PKCE, rotating refresh_token, client_credentials and password),
// token introspection (/o/introspect/, RFC 7662) and revocation
// (/o/revoke_token/, RFC 7009), and issues the authorization codes the
// authorize endpoint hands out.
//
// Codes and tokens live in memory: 32 random bytes, base64url-encoded,
// kept by their SHA-256 only. Expired entries are swept out on writes, so
// memory stays bounded by what is issued within one token lifetime. With
// Config.TokenFile they are also kept in a file, loaded at start.
//
// go-oauth2 is not used. Its manager maps errors by identity, matches
// redirect URIs by host suffix and reads client credentials from HTTP
// Basic only, all of which this contract must do otherwise; its stores
// know neither token families (a replayed code revokes what it issued)
// nor hashed keys; and its generators are what crypto/rand does in a line.
package token

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/users"
)

// Defaults for the zero values of Config.
const (
	DefaultAccessTokenTTL  = 36000 * time.Second // django-oauth-toolkit's ACCESS_TOKEN_EXPIRE_SECONDS
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
	DefaultCodeTTL         = 60 * time.Second
)

// clientRegistry is what the token package needs of the clients;
// *clients.Registry is one.
type clientRegistry interface {
	Lookup(id string) (clients.Client, bool)
	Authenticate(id, secret string) (clients.Client, bool)
}

// userStore is what the token package needs of the users; *users.Store
// is one.
type userStore interface {
	Authenticate(ctx context.Context, username, password string) (users.User, users.Method, error)
	ByID(id int64) (users.User, bool)
}

// Config holds the dependencies and settings of a Service.
type Config struct {
	Clients clientRegistry
	Users   userStore
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
	// Throttle limits failed logins of the password grant; nil: no limit.
	Throttle LoginThrottle

	AccessTokenTTL  time.Duration // 0: DefaultAccessTokenTTL
	RefreshTokenTTL time.Duration // 0: DefaultRefreshTokenTTL
	CodeTTL         time.Duration // 0: DefaultCodeTTL

	// TokenFile keeps codes and tokens (their hashes) in this file across
	// restarts; "": memory only. Call Service.Close on shutdown.
	TokenFile string
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	for _, check := range []struct {
		bad bool
		msg string
	}{
		{c.Clients == nil, "Clients is required"},
		{c.Users == nil, "Users is required"},
		{c.AccessTokenTTL < 0, "AccessTokenTTL must not be negative"},
		{c.RefreshTokenTTL < 0, "RefreshTokenTTL must not be negative"},
		{c.CodeTTL < 0, "CodeTTL must not be negative"},
	} {
		if check.bad {
			errs = append(errs, errors.New("token: "+check.msg))
		}
	}
	return errors.Join(errs...)
}

// Service issues, checks and revokes codes and tokens.
type Service struct {
	clients    clientRegistry
	users      userStore
	throttle   LoginThrottle
	log        *slog.Logger
	now        func() time.Time
	accessTTL  time.Duration
	refreshTTL time.Duration
	codeTTL    time.Duration
	store      *store
}

// New returns a Service for cfg, with defaults for its zero values.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		clients: cfg.Clients, users: cfg.Users, throttle: cfg.Throttle,
		log:        cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		now:        cfg.Now,
		accessTTL:  cmp.Or(cfg.AccessTokenTTL, DefaultAccessTokenTTL),
		refreshTTL: cmp.Or(cfg.RefreshTokenTTL, DefaultRefreshTokenTTL),
		codeTTL:    cmp.Or(cfg.CodeTTL, DefaultCodeTTL),
		store:      newStore(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.TokenFile != "" {
		st, err := openStore(cfg.TokenFile, s.now(), s.log)
		if err != nil {
			return nil, err
		}
		s.store = st
	}
	return s, nil
}

// Register adds the token, introspection and revocation endpoints to mux.
// Other methods on those paths get a JSON 405.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /o/token/{$}", s.handleToken)
	mux.HandleFunc("/o/token/{$}", methodNotAllowed("POST"))
	mux.HandleFunc("POST /o/introspect/{$}", s.handleIntrospect)
	mux.HandleFunc("GET /o/introspect/{$}", s.handleIntrospect)
	mux.HandleFunc("/o/introspect/{$}", methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("POST /o/revoke_token/{$}", s.handleRevoke)
	mux.HandleFunc("/o/revoke_token/{$}", methodNotAllowed("POST"))
}

// IssueCode stores an authorization code for an approved request and
// returns it. The request is checked again here: a known client, a user,
// a redirect URI the client registered, and a well-formed PKCE challenge.
func (s *Service) IssueCode(ctx context.Context, req grant.CodeRequest) (string, error) {
	c, ok := s.clients.Lookup(req.ClientID)
	if !ok {
		return "", fmt.Errorf("token: issue code: unknown client %q", req.ClientID)
	}
	if req.UserID <= 0 {
		return "", fmt.Errorf("token: issue code for client %q: no user", req.ClientID)
	}
	if _, ok := c.RedirectURI(req.RedirectURI); !ok {
		return "", fmt.Errorf("token: issue code for client %q: redirect URI is not registered", req.ClientID)
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod == "" {
		req.CodeChallengeMethod = "plain" // RFC 7636 §4.3
	}
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return "", fmt.Errorf("token: issue code for client %q: code_challenge_method without code_challenge", req.ClientID)
	case req.CodeChallenge != "" && req.CodeChallengeMethod != "S256" && req.CodeChallengeMethod != "plain":
		return "", fmt.Errorf("token: issue code for client %q: unsupported code_challenge_method %q", req.ClientID, req.CodeChallengeMethod)
	case req.CodeChallenge != "" && !validPKCEValue(req.CodeChallenge):
		return "", fmt.Errorf("token: issue code for client %q: malformed code_challenge", req.ClientID)
	}
	req.Scope = normalizeScope(req.Scope)
	now := s.now()
	return s.store.addCode(now, &code{req: req, expiresAt: now.Add(s.codeTTL)}), nil
}

// LookupAccess returns what an access token grants, or grant.ErrInvalidToken
// when the token is unknown, expired or revoked.
func (s *Service) LookupAccess(ctx context.Context, token string) (grant.Access, error) {
	t, ok := s.store.lookup(s.now(), token)
	if !ok || t.kind != kindAccess {
		return grant.Access{}, grant.ErrInvalidToken
	}
	return t.access(), nil
}

// RevokeUser revokes every access and refresh token of the user, and the
// codes issued to them but not yet exchanged. It returns how many tokens
// it revoked. userID 0 (client_credentials tokens) revokes nothing.
func (s *Service) RevokeUser(userID int64) int {
	if userID == 0 {
		return 0
	}
	n := s.store.revokeUser(userID)
	s.log.Info("tokens revoked", "user_id", userID, "count", n)
	return n
}

// RevokeClient revokes every token and code issued to the client (when it
// is removed from the fixtures) and returns how many tokens it revoked.
func (s *Service) RevokeClient(clientID string) int {
	n := s.store.revokeClient(clientID)
	s.log.Info("tokens revoked", "client_id", clientID, "count", n)
	return n
}

// RevokeAll revokes every token and code; it returns how many tokens it
// revoked.
func (s *Service) RevokeAll() int {
	n := s.store.revokeAll()
	s.log.Info("all tokens revoked", "count", n)
	return n
}

// Info describes a live token, for listings. It never holds the token.
type Info struct {
	grant.Access
	Kind      string // "access_token" or "refresh_token"
	GrantType string // the grant that issued it
}

// List returns every live access and refresh token, oldest first.
func (s *Service) List() []Info {
	recs := s.store.list(s.now())
	out := make([]Info, 0, len(recs))
	for _, r := range recs {
		out = append(out, Info{Access: r.access(), Kind: r.kind.String(), GrantType: r.grantType})
	}
	slices.SortStableFunc(out, func(a, b Info) int {
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.ClientID, b.ClientID); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}

// normalizeScope returns the space-separated scopes of s without
// duplicates, or clients.DefaultScope when s names none.
func normalizeScope(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return clients.DefaultScope
	}
	return strings.Join(out, " ")
}

// hasScope reports whether the space-separated list holds want.
func hasScope(list, want string) bool {
	return slices.Contains(strings.Fields(list), want)
}

// subsetScope reports whether every scope of sub is in super.
func subsetScope(sub, super string) bool {
	have := strings.Fields(super)
	for _, f := range strings.Fields(sub) {
		if !slices.Contains(have, f) {
			return false
		}
	}
	return true
}
