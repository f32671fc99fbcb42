package token_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/token"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
)

const (
	mezzoRedirect  = "http://127.0.0.1:8001/accounts/ircamauth/login/callback/"
	mezzoRedirect2 = "http://localhost:8000/accounts/ircamauth/login/callback/"
	singleRedirect = "https://single.example.org/cb"
	otherRedirect  = "https://other.example.org/cb"
	// singleSecret needs form-urlencoding inside HTTP Basic.
	singleSecret = "s3cr%t:+/ é"
)

var testClients = []fixtures.Client{
	{ClientID: "mezzo", ClientSecret: "mezzo-secret", Name: "Mezzo",
		RedirectURIs: []string{mezzoRedirect, mezzoRedirect2},
		GrantTypes:   []string{"authorization_code", "refresh_token", "password"},
		Scopes:       []string{"read", "write"}},
	// No grant types: authorization_code and refresh_token.
	{ClientID: "single", ClientSecret: singleSecret, Name: "Single",
		RedirectURIs: []string{singleRedirect}},
	{ClientID: "other", ClientSecret: "other-secret", Name: "Other",
		RedirectURIs: []string{otherRedirect}},
	{ClientID: "norefresh", ClientSecret: "norefresh-secret", Name: "No refresh",
		RedirectURIs: []string{"https://norefresh.example.org/cb"},
		GrantTypes:   []string{"authorization_code"}},
	{ClientID: "ci-robot", ClientSecret: "ci-robot-secret", Name: "CI robot",
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"read", "introspection"}},
	{ClientID: "writer-robot", ClientSecret: "writer-robot-secret", Name: "Writer robot",
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"write"}},
}

const (
	alicePassword = "alice-pw"
	bobLDAPPW     = "bob-ldap-pw"
)

// fakeDirectory stands in for LDAP: bob binds with bobLDAPPW, "down" finds
// the directory unavailable, everyone else has bad credentials.
type fakeDirectory struct{}

func (fakeDirectory) Authenticate(ctx context.Context, username, password string) (ldapbind.Entry, error) {
	switch {
	case username == "down":
		return ldapbind.Entry{}, ldapbind.ErrUnavailable
	case username == "bob" && password == bobLDAPPW:
		return ldapbind.Entry{Username: "bob", Mail: "bob@example.org", GivenName: "Bob", SN: "Moog", UIDNumber: 5001}, nil
	}
	return ldapbind.Entry{}, ldapbind.ErrInvalidCredentials
}

type env struct {
	t     testing.TB
	svc   *token.Service
	srv   *httptest.Server
	users *users.Store
	clock *testkit.Clock
	logs  *testkit.SyncBuffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e, err := startEnv(t, newClock(), &slog.HandlerOptions{Level: slog.LevelDebug}, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) }

// startEnv serves the token endpoints with the test users and clients on
// the clock clk, logging with logOpts; tokenFile, when set, keeps the
// tokens there.
func startEnv(t testing.TB, clk *testkit.Clock, logOpts *slog.HandlerOptions, tokenFile string) (*env, error) {
	t.Helper()
	us, err := users.NewStore(testkit.AliceAndBob(t, alicePassword), fakeDirectory{}, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	svc, err := token.New(token.Config{
		Clients:   clients.NewRegistry(testClients),
		Users:     us,
		Logger:    slog.New(slog.NewTextHandler(logs, logOpts)),
		Now:       clk.Now,
		TokenFile: tokenFile,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { svc.Close() })
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, srv: srv, users: us, clock: clk, logs: logs}, nil
}

// code issues an authorization code for alice, as the authorize endpoint
// would after login and consent.
func (e *env) code(req grant.CodeRequest) string {
	e.t.Helper()
	if req.UserID == 0 {
		req.UserID, req.Username = 1, "alice"
	}
	c, err := e.svc.IssueCode(context.Background(), req)
	if err != nil {
		e.t.Fatalf("IssueCode: %v", err)
	}
	return c
}

// oauth2Config is the golang.org/x/oauth2 client of a test client.
func (e *env) oauth2Config(id, secret, redirect string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.srv.URL + "/o/authorize/",
			TokenURL:  e.srv.URL + "/o/token/",
			AuthStyle: style,
		},
	}
}

func (e *env) ctx() context.Context {
	return context.WithValue(e.t.Context(), oauth2.HTTPClient, e.srv.Client())
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// str returns a string field of the JSON body, "" when absent.
func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

type authFunc func(*http.Request)

func basic(id, secret string) authFunc {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

func bearer(tok string) authFunc {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func noAuth(*http.Request) {}

// post sends form to path, form-urlencoded.
func (e *env) post(path string, form url.Values, auth authFunc) reply {
	e.t.Helper()
	return e.send(http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), auth)
}

// send sends a raw request and decodes the JSON answer, failing the test
// when the answer is not JSON.
func (e *env) send(method, path, contentType, body string, auth authFunc) reply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	auth(req)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("%s %s: Content-Type %q, want JSON; body %q", method, path, ct, raw)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		e.t.Fatalf("%s %s: body is not a JSON object: %v; body %q", method, path, err, raw)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		e.t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, got)
	}
	return r
}

// wantError checks an error answer: status, JSON error code, and for 401
// invalid_client a Basic challenge.
func wantError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d with error %q", r.status, r.raw, status, code)
	}
	if r.str("error_description") == "" {
		t.Errorf("error %q without error_description", code)
	}
	if code == "invalid_client" {
		if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="ircam-auth"` {
			t.Errorf("WWW-Authenticate %q, want Basic realm", got)
		}
	}
}

// wantTokens checks a successful token answer and returns it.
func wantTokens(t testing.TB, r reply, scope string, withRefresh bool) reply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %d %s, want 200", r.status, r.raw)
	}
	if r.str("access_token") == "" || r.str("token_type") != "Bearer" || r.str("scope") != scope {
		t.Errorf("token answer %s: want an access_token, token_type Bearer, scope %q", r.raw, scope)
	}
	if got, _ := r.body["expires_in"].(float64); got != 36000 {
		t.Errorf("expires_in %v, want 36000", r.body["expires_in"])
	}
	if (r.str("refresh_token") != "") != withRefresh {
		t.Errorf("refresh_token present = %v, want %v", r.str("refresh_token") != "", withRefresh)
	}
	if got := r.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma %q, want no-cache", got)
	}
	return r
}

// wantOutcome checks a token answer: with wantTokens (scope read) when
// code is "", with wantError for status and code otherwise.
func wantOutcome(t testing.TB, r reply, status int, code string, withRefresh bool) {
	t.Helper()
	if code == "" {
		wantTokens(t, r, "read", withRefresh)
		return
	}
	wantError(t, r, status, code)
}

// exchangeForm is the form django-allauth posts to exchange a code.
func exchangeForm(code, redirect, id, secret string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {id}, "client_secret": {secret},
	}
}

// active reports whether an access token is valid.
func (e *env) active(tok string) bool {
	_, err := e.svc.LookupAccess(context.Background(), tok)
	return err == nil
}
