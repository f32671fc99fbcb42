// Package authorize serves the browser side of the OAuth2 authorization
// code flow: the authorization endpoint (RFC 6749 §4.1) with its login and
// consent pages, the browser session that remembers who signed in, and
// logout.
//
// It checks every request before showing a page: an unknown client or a
// redirect URI that is not registered is shown as an error page here and
// never redirected to; other errors go back to the client. Codes are
// issued through a CodeIssuer (the token package) so that this package
// does not import it.
package authorize

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/httplog"
	"github.com/ircam/ircam-auth/internal/throttle"
	"github.com/ircam/ircam-auth/internal/users"
)

// DefaultSessionTTL is how long a login lasts in a browser.
const DefaultSessionTTL = 12 * time.Hour

// maxFormBytes bounds the body of the login, consent and logout forms.
const maxFormBytes = 64 << 10

// ClientStore finds registered clients; *clients.Registry is one.
type ClientStore interface {
	Lookup(id string) (clients.Client, bool)
	ByName(name string) (clients.Client, bool)
	IsRegisteredOrigin(origin string) bool
}

// UserStore checks passwords and finds users; *users.Store is one.
type UserStore interface {
	Authenticate(ctx context.Context, username, password string) (users.User, users.Method, error)
	Lookup(username string) (users.User, bool)
}

// LoginThrottle checks a password with a, unless the username or the
// client address has failed too often: then it answers
// throttle.ErrTooManyAttempts without a check. *throttle.Guard is one.
type LoginThrottle interface {
	Authenticate(ctx context.Context, a throttle.Authenticator, remoteAddr, username, password string) (users.User, users.Method, error)
}

// CodeIssuer turns an approved request into an authorization code; the
// token service is one.
type CodeIssuer interface {
	IssueCode(ctx context.Context, req grant.CodeRequest) (string, error)
}

// Config holds the dependencies and settings of a Server.
type Config struct {
	Clients ClientStore
	Users   UserStore
	Codes   CodeIssuer
	// Throttle limits failed logins of the login form; nil: no limit.
	Throttle LoginThrottle
	Logger   *slog.Logger     // nil: discard
	Now      func() time.Time // nil: time.Now
	// PublicURL is the browser-facing base URL, such as
	// https://auth.example/ behind a proxy. Empty: pages use relative URLs.
	PublicURL string
	// PKCERequired refuses authorization requests without code_challenge.
	PKCERequired bool
	// SessionTTL is how long a login lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Clients == nil {
		errs = append(errs, errors.New("Clients is nil"))
	}
	if c.Users == nil {
		errs = append(errs, errors.New("Users is nil"))
	}
	if c.Codes == nil {
		errs = append(errs, errors.New("Codes is nil"))
	}
	if c.SessionTTL < 0 {
		errs = append(errs, fmt.Errorf("SessionTTL %v is negative", c.SessionTTL))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("PublicURL: %w", err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			errs = append(errs, fmt.Errorf("PublicURL %q is not an absolute http or https URL", c.PublicURL))
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("PublicURL %q may not have a query, fragment or user info", c.PublicURL))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("authorize: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Server serves the authorization endpoint, its pages, and logout.
type Server struct {
	clients      ClientStore
	users        UserStore
	throttle     LoginThrottle
	codes        CodeIssuer
	log          *slog.Logger
	now          func() time.Time
	base         string // PublicURL without its trailing slash; "" for relative URLs
	secureCookie bool   // PublicURL is https
	pkceRequired bool
	sessions     *sessionStore
	pages        map[page]*template.Template
	cop          *http.CrossOriginProtection
}

// New checks cfg and returns a Server; it does not start anything.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{
		clients: cfg.Clients, users: cfg.Users, codes: cfg.Codes, throttle: cfg.Throttle,
		log: cfg.Logger, now: cfg.Now,
		base:         strings.TrimRight(cfg.PublicURL, "/"),
		pkceRequired: cfg.PKCERequired,
		pages:        pages,
		cop:          http.NewCrossOriginProtection(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	ttl := cfg.SessionTTL
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	s.sessions = newSessionStore(s.now, ttl)
	if cfg.PublicURL != "" {
		// In lower case, as browsers send it; Validate checked the URL.
		origin, _ := clients.Origin(cfg.PublicURL)
		s.secureCookie = strings.HasPrefix(origin, "https://")
		// Behind a proxy the Host header may not be the public host.
		if err := s.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("authorize: PublicURL: %w", err)
		}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(s.crossOrigin))
	return s, nil
}

// Register adds the server's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /o/authorize/{$}", s.authorize)
	mux.Handle("POST /o/authorize/{$}", s.cop.Handler(http.HandlerFunc(s.authorizePost)))
	mux.HandleFunc("GET /accounts/logout/{$}", s.logout)
	mux.Handle("POST /accounts/logout/{$}", s.cop.Handler(http.HandlerFunc(s.logout)))
	mux.HandleFunc("GET /logout_redirect/{name}", s.logoutRedirect)
}

// url returns the browser-facing URL of path, which starts with "/".
func (s *Server) url(path string) string { return s.base + path }

// setSessionCookie gives the browser the cookie of session id, which
// lasts as long as the session of username does.
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, id, username string) {
	http.SetCookie(w, sessionCookie(id, s.sessions.lifetime(username), s.secure(r)))
}

// secure reports whether cookies set in answer to r get the Secure flag.
func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.secureCookie }

// crossOrigin answers a form posted from another site.
func (s *Server) crossOrigin(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("cross-origin form post refused", "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	s.errorPage(w, http.StatusForbidden, "Request refused",
		"This form was sent from another site, so it was refused. Open the sign-in page again from the application you were using.", "", "")
}

// current returns the browser's live session and its id.
func (s *Server) current(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", session{}, false
	}
	sess, ok := s.sessions.get(c.Value)
	if !ok {
		return "", session{}, false
	}
	return c.Value, sess, true
}

// validate parses the authorization request of r, answering the errors
// itself; ok is false when it did.
func (s *Server) validate(w http.ResponseWriter, r *http.Request) (*authRequest, bool) {
	req, err := s.parseRequest(r.URL.RawQuery)
	if req != nil && req.client.ID != "" {
		httplog.Set(r.Context(), "client_id", req.client.ID)
	}
	var pe *badRequest
	var re *redirectError
	switch {
	case err == nil:
		return req, true
	case errors.As(err, &pe):
		s.log.Info("authorization request refused", "reason", pe.msg)
		s.errorPage(w, http.StatusBadRequest, "Invalid authorization request", pe.msg, "", "")
	case errors.As(err, &re):
		s.log.Info("authorization request refused", "client_id", req.client.ID, "error", re.code, "reason", re.desc)
		s.redirectError(w, r, req, re.code, re.desc)
	default:
		s.errorPage(w, http.StatusBadRequest, "Invalid authorization request", err.Error(), "", "")
	}
	return nil, false
}

// redirectError sends the browser back to the client with an error.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	s.redirect(w, r, clientRedirect(req.redirectURI, v))
}

// redirect answers 302 to location.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, location string) {
	setCommonHeaders(w.Header())
	http.Redirect(w, r, location, http.StatusFound)
}

// action is the URL the pages' forms post to: this endpoint, with the
// authorization request in its query.
func (s *Server) action(req *authRequest) string {
	return s.url("/o/authorize/") + "?" + req.query.Encode()
}

// authorize answers GET /o/authorize/.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	req, ok := s.validate(w, r)
	if !ok {
		return
	}
	if req.client.AllowLoginHint && req.loginHint != "" {
		s.loginHint(w, r, req)
		return
	}
	id, sess, ok := s.current(r)
	if !ok || !sess.loggedIn() {
		s.showLogin(w, r, req, ok, sess, http.StatusOK, "", req.loginHint)
		return
	}
	s.afterLogin(w, r, req, id, sess)
}

// loginHint completes the flow for a client that opted in to login_hint:
// the user named there is signed in without a password. This exists for
// CI pipelines and is off unless the fixtures enable it for the client.
func (s *Server) loginHint(w http.ResponseWriter, r *http.Request, req *authRequest) {
	u, ok := s.users.Lookup(req.loginHint)
	if !ok {
		s.log.Warn("login failed", "user", truncate(req.loginHint), "client_id", req.client.ID, "method", "login_hint", "reason", "unknown user")
		s.redirectError(w, r, req, "access_denied", "unknown login_hint user")
		return
	}
	s.log.Info("login", "user", u.Username, "client_id", req.client.ID, "method", "login_hint")
	s.issue(w, r, req, u.ID, u.Username)
}

// showLogin renders the login page, making an anonymous session to bind
// its CSRF token to when the browser has no session.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, req *authRequest, haveSession bool, sess session, status int, msg, username string) {
	if !haveSession {
		var id string
		id, sess = s.sessions.create(0, "")
		s.setSessionCookie(w, r, id, sess.username)
	}
	s.render(w, status, pageLogin, redirectOrigin(req.redirectURI), pageData{
		Title: "Sign in to " + req.client.Name, ClientName: req.client.Name,
		Action: s.action(req), CSRF: sess.csrf, Username: username, Error: msg,
	})
}

// afterLogin shows the consent page, or issues the code when consent is
// not needed.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, req *authRequest, id string, sess session) {
	if req.client.SkipAuthorization || sess.approved(req.client.ID, req.scopes) {
		s.issue(w, r, req, sess.userID, sess.username)
		return
	}
	s.showConsent(w, r, req, sess, http.StatusOK, "")
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, req *authRequest, sess session, status int, msg string) {
	s.render(w, status, pageConsent, redirectOrigin(req.redirectURI), pageData{
		Title: "Authorize " + req.client.Name, ClientName: req.client.Name,
		Action: s.action(req), CSRF: sess.csrf, Username: sess.username,
		Scopes: describeScopes(req.scopes), Error: msg,
	})
}

// issue asks for a code and sends the browser back to the client with it.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, req *authRequest, userID int64, username string) {
	code, err := s.codes.IssueCode(r.Context(), grant.CodeRequest{
		ClientID:            req.client.ID,
		RedirectURI:         req.rawRedirectURI,
		Scope:               req.scope,
		UserID:              userID,
		Username:            username,
		CodeChallenge:       req.codeChallenge,
		CodeChallengeMethod: req.challengeMeth,
	})
	if err != nil {
		s.log.Error("issue authorization code", "client_id", req.client.ID, "user", username, "err", err)
		s.redirectError(w, r, req, "server_error", "the authorization code could not be issued")
		return
	}
	s.log.Info("authorization code issued", "client_id", req.client.ID, "user", username, "scope", req.scope)
	httplog.Set(r.Context(), "user", username)
	v := url.Values{"code": {code}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	s.redirect(w, r, clientRedirect(req.redirectURI, v))
}

// authorizePost answers the login and consent forms.
func (s *Server) authorizePost(w http.ResponseWriter, r *http.Request) {
	req, ok := s.validate(w, r)
	if !ok {
		return
	}
	form, ok := s.parseForm(w, r)
	if !ok {
		return
	}
	id, sess, ok := s.current(r)
	if !ok || !sess.checkCSRF(form.Get("csrf_token")) {
		s.log.Warn("form refused: bad or missing CSRF token", "client_id", req.client.ID, "has_session", ok)
		s.errorPage(w, http.StatusForbidden, "Form expired",
			"This form has expired or was not sent from this site. Start again and submit the new form.",
			s.action(req), "Start again")
		return
	}
	switch {
	case form.Has("username") || form.Has("password"):
		s.login(w, r, req, sess, form)
	case !sess.loggedIn():
		s.showLogin(w, r, req, true, sess, http.StatusOK, "", "")
	case form.Has("deny"):
		s.log.Info("authorization denied", "client_id", req.client.ID, "user", sess.username, "scope", req.scope)
		s.redirectError(w, r, req, "access_denied", "the user denied the request")
	case form.Has("allow"):
		s.sessions.approve(id, req.client.ID, req.scopes)
		s.issue(w, r, req, sess.userID, sess.username)
	default:
		s.showConsent(w, r, req, sess, http.StatusBadRequest, "Choose Authorize or Deny.")
	}
}

// parseForm reads a bounded form body, answering errors itself.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		s.errorPage(w, status, "Invalid form", "The form could not be read: "+err.Error(), "", "")
		return nil, false
	}
	return r.PostForm, true
}

// login checks the credentials of the login form and, on success, starts
// a new session and goes on to consent through a GET of this endpoint.
func (s *Server) login(w http.ResponseWriter, r *http.Request, req *authRequest, anon session, form url.Values) {
	username := strings.TrimSpace(form.Get("username"))
	password := form.Get("password")
	u, method, err := s.authenticate(r, username, password)
	if err != nil {
		status, msg, reason := http.StatusUnauthorized, "Invalid username or password.", "invalid credentials"
		switch {
		case errors.Is(err, users.ErrInvalidCredentials):
		case errors.Is(err, throttle.ErrTooManyAttempts):
			retry := throttle.RetryAfter(err)
			status, reason = http.StatusTooManyRequests, "too many failed attempts"
			msg = "Too many failed attempts; try again in " + throttle.InMinutes(retry) + "."
			w.Header().Set("Retry-After", throttle.InSeconds(retry))
		default:
			status, msg, reason = http.StatusServiceUnavailable, "The user directory is unavailable; try again later.", "directory unavailable"
		}
		s.log.Warn("login failed", "user", truncate(username), "client_id", req.client.ID, "method", string(method), "reason", reason)
		if status == http.StatusServiceUnavailable {
			s.log.Error("user directory", "err", err)
		}
		s.showLogin(w, r, req, true, anon, status, msg, username)
		return
	}
	s.log.Info("login", "user", u.Username, "client_id", req.client.ID, "method", string(method))
	httplog.Set(r.Context(), "user", u.Username)
	// A new id on login, so that an id planted before it is worthless.
	if c, err := r.Cookie(CookieName); err == nil {
		s.sessions.delete(c.Value)
	}
	id, _ := s.sessions.create(u.ID, u.Username)
	s.setSessionCookie(w, r, id, u.Username)
	setCommonHeaders(w.Header())
	http.Redirect(w, r, s.action(req), http.StatusSeeOther)
}

// authenticate checks the password, through the throttle when there is one.
func (s *Server) authenticate(r *http.Request, username, password string) (users.User, users.Method, error) {
	if s.throttle == nil {
		return s.users.Authenticate(r.Context(), username, password)
	}
	return s.throttle.Authenticate(r.Context(), s.users, r.RemoteAddr, username, password)
}

// truncate bounds a user-typed string before it is logged.
func truncate(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// logout answers GET and POST /accounts/logout/.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		form, ok := s.parseForm(w, r)
		if !ok {
			return
		}
		if form.Has("next") {
			next = form.Get("next")
		}
	}
	s.endSession(w, r)
	s.redirect(w, r, s.safeNext(next))
}

// endSession deletes the browser's session and expires its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		if sess, ok := s.sessions.get(c.Value); ok && sess.loggedIn() {
			s.log.Info("logout", "user", sess.username)
		}
		s.sessions.delete(c.Value)
	}
	http.SetCookie(w, expiredCookie(s.secure(r)))
}

// safeNext returns next when it is a path on this site or a URL at a
// registered redirect origin, and "/" otherwise.
func (s *Server) safeNext(next string) string {
	home := s.url("/")
	if next == "" || strings.Contains(next, `\`) || strings.ContainsFunc(next, isControl) {
		// Browsers read "\" as "/" and drop tabs and newlines: "/\evil"
		// and "/\t/evil" both mean "//evil".
		return home
	}
	if next[0] == '/' {
		// A path; "//host" would be another site.
		if _, err := url.Parse(next); err != nil || strings.HasPrefix(next, "//") {
			return home
		}
		return next
	}
	u, err := url.Parse(next)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return home
	}
	if !s.clients.IsRegisteredOrigin(u.Scheme + "://" + u.Host) {
		return home
	}
	return u.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// logoutRedirect answers GET /logout_redirect/{name}: it ends the session
// and sends the browser to the client's home.
func (s *Server) logoutRedirect(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clients.ByName(r.PathValue("name"))
	if !ok {
		s.errorPage(w, http.StatusNotFound, "Unknown application", "No application of that name is registered here.", "", "")
		return
	}
	s.endSession(w, r)
	to := s.url("/")
	if o := c.Origins(); len(o) > 0 {
		to = o[0] + "/"
	}
	s.redirect(w, r, to)
}
