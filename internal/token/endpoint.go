package token

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/httplog"
	"github.com/ircam/ircam-auth/internal/throttle"
	"github.com/ircam/ircam-auth/internal/users"
)

// LoginThrottle checks a password with a, unless the username or the
// client address has failed too often: then it answers
// throttle.ErrTooManyAttempts without a check. *throttle.Guard is one.
type LoginThrottle interface {
	Authenticate(ctx context.Context, a throttle.Authenticator, remoteAddr, username, password string) (users.User, users.Method, error)
}

// tokenResponse is a successful answer of the token endpoint (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// issued is what a grant handler reports for the log and the answer.
type issued struct {
	resp   tokenResponse
	user   string
	method users.Method // how the password grant checked the password
	// retryAfter is the Retry-After of a throttled password grant.
	retryAfter time.Duration
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	grantType := form.Get("grant_type")
	var c clients.Client
	if oerr == nil {
		c, oerr = s.authenticateClient(r, form)
	}
	var out issued
	if oerr == nil {
		out, oerr = s.grant(r, c, grantType, form)
	}
	clientID := logClientID(c, r, form)
	httplog.Set(r.Context(), "client_id", clientID)
	httplog.Set(r.Context(), "grant_type", grantType)
	httplog.Set(r.Context(), "user", out.user)
	// The attributes of the log line, without a Logger.With per request.
	attrs := []any{"client_id", clientID, "grant_type", grantType, "user", out.user}
	if out.method != "" {
		attrs = append(attrs, "method", string(out.method))
	}
	if oerr != nil {
		attrs = append(append(attrs, "error", oerr.code, "reason", oerr.desc), oerr.logAttrs...)
		s.log.Log(r.Context(), oerr.level, "token request refused", attrs...)
		if out.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((out.retryAfter+time.Second-1)/time.Second)))
		}
		writeError(w, oerr)
		return
	}
	s.log.Info("token issued", append(attrs, "scope", out.resp.Scope, "refresh_token", out.resp.RefreshToken != "")...)
	WriteJSON(w, http.StatusOK, out.resp)
}

// grant runs the grant type's handler once the client is authenticated.
func (s *Service) grant(r *http.Request, c clients.Client, grantType string, form url.Values) (issued, *oauthError) {
	var handle func(*http.Request, clients.Client, url.Values) (issued, *oauthError)
	switch grantType {
	case "":
		return issued{}, errInvalidRequest("grant_type is required")
	case "authorization_code":
		handle = s.authorizationCode
	case "refresh_token":
		handle = s.refreshToken
	case "client_credentials":
		handle = s.clientCredentials
	case "password":
		handle = s.password
	default:
		return issued{}, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			desc: "grant_type " + strconvQuote(grantType) + " is not supported"}
	}
	if !c.AllowsGrant(grantType) {
		return issued{}, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client",
			desc: "this client may not use the " + grantType + " grant"}
	}
	return handle(r, c, form)
}

func (s *Service) response(access, refresh, scope string) tokenResponse {
	return tokenResponse{
		AccessToken: access, TokenType: "Bearer",
		ExpiresIn: int64(s.accessTTL.Seconds()), Scope: scope,
		RefreshToken: refresh,
	}
}

// authorizationCode exchanges a code (RFC 6749 §4.1.3, RFC 7636 §4.5).
// Every check and the marking of the code as used happen under one lock,
// so two concurrent exchanges of one code cannot both succeed. A failed
// check leaves the code usable; a second exchange of a used code revokes
// every token issued from it.
func (s *Service) authorizationCode(r *http.Request, c clients.Client, form url.Values) (issued, *oauthError) {
	v := form.Get("code")
	if v == "" {
		return issued{}, errInvalidRequest("code is required")
	}
	verifier, hasVerifier := form.Get("code_verifier"), form.Has("code_verifier")
	redirectURI, hasRedirect := form.Get("redirect_uri"), form.Has("redirect_uri")
	now := s.now()

	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	cd, ok := st.codeLocked(v)
	switch {
	case !ok:
		return issued{}, errInvalidGrant("the authorization code is invalid or expired")
	case !now.Before(cd.expiresAt):
		st.deleteCodeLocked(v)
		return issued{}, errInvalidGrant("the authorization code is invalid or expired")
	case cd.req.ClientID != c.ID:
		return issued{}, errInvalidGrant("the authorization code was issued to another client")
	case cd.used:
		// A replay: the code may have leaked, so what it issued goes.
		e := errInvalidGrant("the authorization code has already been used")
		e.level = slog.LevelWarn
		e.logAttrs = []any{"replay", true, "revoked", st.revokeFamilyLocked(cd.family)}
		return issued{user: cd.req.Username}, e
	}
	req := cd.req
	if req.RedirectURI != "" {
		if !hasRedirect || redirectURI != req.RedirectURI {
			return issued{user: req.Username}, errInvalidGrant("redirect_uri does not match the authorization request")
		}
	} else if hasRedirect {
		if registered, ok := c.RedirectURI(""); !ok || redirectURI != registered {
			return issued{user: req.Username}, errInvalidGrant("redirect_uri does not match the registered redirect URI")
		}
	}
	if oerr := checkPKCE(req.CodeChallenge, req.CodeChallengeMethod, verifier, hasVerifier); oerr != nil {
		return issued{user: req.Username}, oerr
	}

	cd.used = true
	cd.family = st.newFamilyLocked()
	access, refresh := st.issueLocked(now, record{
		grantType: "authorization_code", clientID: c.ID, scope: req.Scope,
		userID: req.UserID, username: req.Username, family: cd.family,
	}, s.accessTTL, s.refreshTTL, c.AllowsGrant("refresh_token"))
	return issued{resp: s.response(access, refresh, req.Scope), user: req.Username}, nil
}

// checkPKCE checks the code_verifier against the code's challenge
// (RFC 7636 §4.6). A verifier for a code issued without a challenge is
// refused, as RFC 9700 §2.1.1 asks, against PKCE downgrade.
func checkPKCE(challenge, method, verifier string, hasVerifier bool) *oauthError {
	if challenge == "" {
		if hasVerifier {
			return errInvalidGrant("code_verifier given for a code issued without code_challenge")
		}
		return nil
	}
	if !hasVerifier || verifier == "" {
		return errInvalidRequest("code_verifier is required: the authorization request had a code_challenge")
	}
	if !validPKCEValue(verifier) {
		return errInvalidGrant("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) != 1 {
		return errInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// validPKCEValue reports whether s is a well-formed code verifier or
// challenge: 43 to 128 unreserved characters (RFC 7636 §4.1, §4.2).
func validPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '-', b == '.', b == '_', b == '~':
		default:
			return false
		}
	}
	return true
}

// refreshToken rotates a refresh token (RFC 6749 §6): the old refresh
// token and its access token stop working, and a new pair is issued with
// the same family. The requested scope may narrow the original grant's,
// never widen it; the new refresh token keeps the original scope.
//
// Revoking an access token at /o/revoke_token/ leaves its refresh token
// usable (RFC 7009 §2.1 lets the server choose): a refresh afterwards
// gets a new pair. Revoking the refresh token revokes both.
func (s *Service) refreshToken(r *http.Request, c clients.Client, form url.Values) (issued, *oauthError) {
	v := form.Get("refresh_token")
	if v == "" {
		return issued{}, errInvalidRequest("refresh_token is required")
	}
	requested := form.Get("scope")
	now := s.now()

	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.lookupLocked(now, v)
	if old == nil || old.kind != kindRefresh {
		return issued{}, errInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	if old.clientID != c.ID {
		return issued{}, errInvalidGrant("the refresh token was issued to another client")
	}
	scope := old.grantScope
	if requested != "" {
		if !subsetScope(requested, old.grantScope) {
			return issued{user: old.username}, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
				desc: "the requested scope exceeds the scope originally granted"}
		}
		scope = normalizeScope(requested)
	}
	if old.userID != 0 {
		if _, ok := s.users.ByID(old.userID); !ok {
			st.revokeLocked(v)
			return issued{user: old.username}, errInvalidGrant("the user of this refresh token no longer exists")
		}
	}
	tmpl := *old
	tmpl.scope, tmpl.pair = scope, key{}
	st.revokeLocked(v)
	access, refresh := st.issueLocked(now, tmpl, s.accessTTL, s.refreshTTL, true)
	return issued{resp: s.response(access, refresh, scope), user: old.username}, nil
}

// issueNew issues the tokens of a new grant (a family of its own) from
// tmpl, with a refresh token when withRefresh.
func (s *Service) issueNew(tmpl record, withRefresh bool) (access, refresh string) {
	now := s.now()
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	tmpl.family = st.newFamilyLocked()
	return st.issueLocked(now, tmpl, s.accessTTL, s.refreshTTL, withRefresh)
}

// requestedScope returns the form's scope, or the default, if the client
// may ask for it.
func requestedScope(c clients.Client, form url.Values) (string, *oauthError) {
	scope := normalizeScope(form.Get("scope"))
	if !c.AllowsScope(scope) {
		return "", &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			desc: "this client may not ask for scope " + strconvQuote(scope)}
	}
	return scope, nil
}

// clientCredentials issues a token to the client itself (RFC 6749 §4.4):
// no user, no refresh token.
func (s *Service) clientCredentials(r *http.Request, c clients.Client, form url.Values) (issued, *oauthError) {
	scope, oerr := requestedScope(c, form)
	if oerr != nil {
		return issued{}, oerr
	}
	access, _ := s.issueNew(record{grantType: "client_credentials", clientID: c.ID, scope: scope}, false)
	return issued{resp: s.response(access, "", scope)}, nil
}

// authenticate checks the password, through the throttle when there is one.
func (s *Service) authenticate(r *http.Request, username, password string) (users.User, users.Method, error) {
	if s.throttle == nil {
		return s.users.Authenticate(r.Context(), username, password)
	}
	return s.throttle.Authenticate(r.Context(), s.users, r.RemoteAddr, username, password)
}

// password issues a token for a user's credentials (RFC 6749 §4.3). A
// directory outage is a 503, not a wrong password.
func (s *Service) password(r *http.Request, c clients.Client, form url.Values) (issued, *oauthError) {
	username, password := form.Get("username"), form.Get("password")
	if username == "" || !form.Has("password") {
		return issued{}, errInvalidRequest("username and password are required")
	}
	scope, oerr := requestedScope(c, form)
	if oerr != nil {
		return issued{}, oerr
	}
	u, method, err := s.authenticate(r, username, password)
	switch {
	case errors.Is(err, users.ErrInvalidCredentials):
		return issued{user: username, method: method}, errInvalidGrant("invalid username or password")
	case errors.Is(err, throttle.ErrTooManyAttempts):
		// 429 with its own error code: the password may be right, so
		// invalid_grant would mislead; a client shows the description.
		retry := throttle.RetryAfter(err)
		return issued{user: username, retryAfter: retry}, &oauthError{status: http.StatusTooManyRequests,
			code: "too_many_requests", desc: "too many failed logins for this username or client address; try again in " + throttle.InMinutes(retry),
			level: slog.LevelWarn}
	case errors.Is(err, users.ErrDirectoryUnavailable):
		return issued{user: username, method: method}, &oauthError{status: http.StatusServiceUnavailable,
			code: "temporarily_unavailable", desc: "the user directory is unavailable; try again later",
			level: slog.LevelError, logAttrs: []any{"err", err}}
	case err != nil:
		return issued{user: username, method: method}, &oauthError{status: http.StatusInternalServerError,
			code: "server_error", desc: "the credentials could not be checked",
			level: slog.LevelError, logAttrs: []any{"err", err}}
	}
	access, refresh := s.issueNew(record{
		grantType: "password", clientID: c.ID, scope: scope,
		userID: u.ID, username: u.Username,
	}, c.AllowsGrant("refresh_token"))
	return issued{resp: s.response(access, refresh, scope), user: u.Username, method: method}, nil
}
