package authorize

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

func TestFullFlow(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			e := newEnv(t, tls)
			c := e.browser()
			path := authorizeURL("response_type", "code", "client_id", "mezzo",
				"redirect_uri", mezzoRedirect, "scope", "read", "state", "st-1")

			r := e.get(c, path)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", r.StatusCode)
			}
			if !strings.Contains(r.body, "Sign in to Mezzo") {
				t.Errorf("login page does not name the client:\n%s", r.body)
			}
			f := parseForm(t, r)
			if f.method != http.MethodPost || f.action.Path != "/o/authorize/" {
				t.Errorf("form %s %s, want POST /o/authorize/", f.method, f.action)
			}
			if got := f.action.Query(); got.Get("client_id") != "mezzo" || got.Get("state") != "st-1" || got.Get("redirect_uri") != mezzoRedirect {
				t.Errorf("form action %s does not carry the request", f.action)
			}
			if f.inputs["username"] != "text" || f.inputs["password"] != "password" {
				t.Errorf("inputs %v, want username text and password password", f.inputs)
			}
			if f.labels["username"] == "" || f.labels["password"] == "" {
				t.Errorf("inputs without labels: %v", f.labels)
			}
			before := r.sessionCookie()
			if before == nil {
				t.Fatal("login page set no session cookie")
			}

			r = e.submit(c, f, url.Values{"username": {"alice"}, "password": {alicePassword}}, "")
			if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Authorize Mezzo") {
				t.Fatalf("after login: status %d, want the consent page:\n%s", r.StatusCode, r.body)
			}
			// The session id changed on login.
			u, _ := url.Parse(e.srv.URL)
			for _, ck := range c.Jar.Cookies(u) {
				if ck.Name == CookieName && ck.Value == before.Value {
					t.Error("session id not rotated on login")
				}
			}
			f = parseForm(t, r)
			if f.buttons["allow"] == "" {
				t.Errorf("consent form has no allow button: %v", f.buttons)
			}
			if _, ok := f.buttons["deny"]; !ok {
				t.Errorf("consent form has no deny button: %v", f.buttons)
			}
			// The scope list, not the form action, which carries scope= too.
			if !strings.Contains(r.body, "<strong>read</strong>") {
				t.Error("consent page does not name the scope")
			}

			r = e.submit(c, f, nil, "allow")
			loc := location(t, r)
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != mezzoRedirect {
				t.Errorf("redirected to %s, want %s", got, mezzoRedirect)
			}
			if loc.Query().Get("code") != "code-a" || loc.Query().Get("state") != "st-1" {
				t.Errorf("redirect query %q, want code and state", loc.RawQuery)
			}
			want := grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read", UserID: 1, Username: "alice"}
			if got := e.codes.last(t); got != want {
				t.Errorf("CodeRequest = %+v, want %+v", got, want)
			}

			// The same session: no login, no consent.
			r = e.get(c, strings.Replace(path, "st-1", "st-2", 1))
			loc = location(t, r)
			if loc.Query().Get("code") != "code-b" || loc.Query().Get("state") != "st-2" {
				t.Errorf("second authorize: redirect query %q", loc.RawQuery)
			}
			// A scope not yet approved asks again.
			r = e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo", "scope", "read write"))
			wantPage(t, r, "<strong>write</strong>", "new scope: the consent page")
			logs := e.logs.String()
			if strings.Contains(logs, alicePassword) {
				t.Error("password in the logs")
			}
			if !strings.Contains(logs, "user=alice") || !strings.Contains(logs, "client_id=mezzo") || !strings.Contains(logs, "method=local") {
				t.Errorf("login not logged with user, client_id and method:\n%s", logs)
			}
		})
	}
}

func TestDeny(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	r := e.login(c, authorizeURL("response_type", "code", "client_id", "mezzo", "state", "s"))
	r = e.submit(c, parseForm(t, r), nil, "deny")
	loc := location(t, r)
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s" {
		t.Errorf("deny: redirect %s", loc)
	}
	if e.codes.count() != 0 {
		t.Error("a code was issued after deny")
	}
	// Deny does not approve: the next request asks again.
	wantPage(t, e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo")), "Authorize Mezzo", "after deny: the consent page")
}

func TestSkipAuthorization(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	r := e.login(c, authorizeURL("response_type", "code", "client_id", "trusted", "state", "x"))
	loc := location(t, r)
	if loc.Host != "trusted.example" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "x" {
		t.Errorf("redirect %s, want trusted.example with code and state", loc)
	}
	if got := e.codes.last(t); got.RedirectURI != "" || got.Username != "alice" {
		t.Errorf("CodeRequest %+v: want RedirectURI \"\" (absent) and alice", got)
	}
}

func TestRedirectURIQueryKept(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	r := e.login(c, authorizeURL("response_type", "code", "client_id", "multi",
		"redirect_uri", "https://app.example/cb?tenant=1", "state", "a b&c"))
	r = e.submit(c, parseForm(t, r), nil, "allow")
	if got, want := r.Header.Get("Location"), "https://app.example/cb?tenant=1&code=code-a&state=a+b%26c"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t, false)
	path := authorizeURL("response_type", "code", "client_id", "mezzo")
	var msgs []string
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "alice", "nope"},
		{"unknown user", "mallory", "nope"},
		{"empty password", "alice", ""},
		{"directory user without directory", "bob", "whatever"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			f := parseForm(t, e.get(c, path))
			r := e.submit(c, f, url.Values{"username": {tc.user}, "password": {tc.pass}}, "")
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", r.StatusCode)
			}
			if r.Header.Get("Location") != "" {
				t.Error("failed login redirected")
			}
			f = parseForm(t, r)
			if f.fields.Get("username") != tc.user {
				t.Errorf("username field %q, want it kept", f.fields.Get("username"))
			}
			if f.fields.Get("password") != "" {
				t.Error("password field refilled")
			}
			msgs = append(msgs, errorBox(r.body))
		})
	}
	for _, m := range msgs {
		if m != msgs[0] || m == "" {
			t.Errorf("messages differ: %q", msgs)
		}
	}
	if e.codes.count() != 0 {
		t.Error("code issued")
	}
	if strings.Contains(e.logs.String(), "nope") {
		t.Error("password in logs")
	}
	if !strings.Contains(e.logs.String(), "reason=") {
		t.Errorf("failure reason not logged:\n%s", e.logs)
	}
}

// errorBox returns the text of the page's error box.
func errorBox(body string) string {
	_, rest, ok := strings.Cut(body, `id="error">`)
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, "</div>")
	return msg
}

func TestDirectoryUnavailable(t *testing.T) {
	withDir := func(cfg *Config) {
		store, err := users.NewStore([]fixtures.User{{ID: 2, Username: "bob"}}, fakeDir{}, bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Users = store
	}
	e := newEnv(t, false, withDir)
	c := e.browser()
	f := parseForm(t, e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo")))
	r := e.submit(c, f, url.Values{"username": {"bob"}, "password": {"pw"}}, "")
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", r.StatusCode)
	}
	if got := errorBox(r.body); got != "The user directory is unavailable; try again later." {
		t.Errorf("message %q", got)
	}
	if !strings.Contains(e.logs.String(), "method=ldap") || !strings.Contains(e.logs.String(), "reason=\"directory unavailable\"") {
		t.Errorf("logs:\n%s", e.logs)
	}
}

func TestBadClientOrRedirectURI(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct{ name, query string }{
		{"unknown client", "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fexample.org%2Fcb"},
		{"missing client_id", "response_type=code&redirect_uri=https%3A%2F%2Fexample.org%2Fcb"},
		{"empty client_id", "response_type=code&client_id="},
		{"repeated client_id", "response_type=code&client_id=mezzo&client_id=mezzo"},
		{"evil host", "response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fevil-example.org%2Fcb"},
		{"host suffix", "response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fexample.org.evil.example%2Fcb"},
		{"extra path", "response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fexample.org%2Fcb%2Fmore"},
		{"extra query", "response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fexample.org%2Fcb%3Fx%3D1"},
		{"other scheme", "response_type=code&client_id=mezzo&redirect_uri=http%3A%2F%2Fexample.org%2Fcb"},
		{"repeated redirect_uri", "response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fexample.org%2Fcb&redirect_uri=https%3A%2F%2Fexample.org%2Fcb"},
		{"missing redirect_uri with two registered", "response_type=code&client_id=multi"},
		{"bad escape", "response_type=code&client_id=mezzo&state=%zz"},
		{"semicolon", "response_type=code;client_id=mezzo"},
		{"bad everything too", "response_type=token&client_id=nobody&scope=admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, e.srv.URL+"/o/authorize/?"+tc.query, strings.NewReader("username=alice&password=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r := e.do(e.noRedirect(), req)
				if r.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400", method, r.StatusCode)
				}
				if loc := r.Header.Get("Location"); loc != "" {
					t.Errorf("%s: Location %q, want none", method, loc)
				}
				if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || errorBox(r.body) == "" {
					t.Errorf("%s: want an HTML page with a message, got %q:\n%s", method, r.Header.Get("Content-Type"), r.body)
				}
			}
		})
	}
	if e.codes.count() != 0 {
		t.Error("code issued")
	}
}

func TestRedirectErrors(t *testing.T) {
	e := newEnv(t, false)
	base := "client_id=limited&state=S1"
	challenge := strings.Repeat("a", 43)
	for _, tc := range []struct{ name, query, want string }{
		{"unsupported response_type", "response_type=token&" + base, "unsupported_response_type"},
		{"missing response_type", base, "invalid_request"},
		{"scope not allowed", "response_type=code&scope=write&" + base, "invalid_scope"},
		{"unknown scope", "response_type=code&scope=read+admin&" + base, "invalid_scope"},
		{"repeated scope", "response_type=code&scope=read&scope=read&" + base, "invalid_request"},
		{"repeated response_type", "response_type=code&response_type=code&" + base, "invalid_request"},
		{"bad challenge method", "response_type=code&code_challenge=" + challenge + "&code_challenge_method=S512&" + base, "invalid_request"},
		{"short challenge", "response_type=code&code_challenge=abc&code_challenge_method=S256&" + base, "invalid_request"},
		{"long challenge", "response_type=code&code_challenge=" + strings.Repeat("a", 129) + "&" + base, "invalid_request"},
		{"bad challenge chars", "response_type=code&code_challenge=" + strings.Repeat("a", 42) + "%2B&" + base, "invalid_request"},
		{"method without challenge", "response_type=code&code_challenge_method=S256&" + base, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(e.noRedirect(), "/o/authorize/?"+tc.query)
			loc := location(t, r)
			if loc.Host != "limited.example" {
				t.Errorf("redirected to %s", loc)
			}
			q := loc.Query()
			if q.Get("error") != tc.want || q.Get("state") != "S1" || q.Get("error_description") == "" {
				t.Errorf("redirect query %q, want error=%s, a description and state", loc.RawQuery, tc.want)
			}
		})
	}
}

func TestMissingRedirectURIWithOneRegistered(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	r := e.login(c, authorizeURL("response_type", "code", "client_id", "mezzo"))
	r = e.submit(c, parseForm(t, r), nil, "allow")
	loc := location(t, r)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != mezzoRedirect {
		t.Errorf("redirected to %s", loc)
	}
	if loc.Query().Has("state") {
		t.Error("state added although none was sent")
	}
	if got := e.codes.last(t).RedirectURI; got != "" {
		t.Errorf("CodeRequest.RedirectURI %q, want \"\"", got)
	}
}

func TestPKCE(t *testing.T) {
	verifierChallenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, tc := range []struct{ name, method, wantMethod string }{
		{"S256", "S256", "S256"},
		{"plain", "plain", "plain"},
		{"default plain", "", "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, func(c *Config) { c.PKCERequired = true })
			c := e.browser()
			params := []string{"response_type", "code", "client_id", "trusted", "code_challenge", verifierChallenge}
			if tc.method != "" {
				params = append(params, "code_challenge_method", tc.method)
			}
			location(t, e.login(c, authorizeURL(params...)))
			got := e.codes.last(t)
			if got.CodeChallenge != verifierChallenge || got.CodeChallengeMethod != tc.wantMethod {
				t.Errorf("CodeRequest %+v", got)
			}
		})
	}
	t.Run("required", func(t *testing.T) {
		e := newEnv(t, false, func(c *Config) { c.PKCERequired = true })
		loc := location(t, e.get(e.noRedirect(), authorizeURL("response_type", "code", "client_id", "trusted", "state", "q")))
		if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "q" {
			t.Errorf("redirect %s", loc)
		}
	})
	t.Run("optional by default", func(t *testing.T) {
		e := newEnv(t, false)
		if r := e.get(e.noRedirect(), authorizeURL("response_type", "code", "client_id", "trusted")); r.StatusCode != http.StatusOK {
			t.Errorf("status %d, want the login page", r.StatusCode)
		}
	})
}

func TestIssueCodeError(t *testing.T) {
	e := newEnv(t, false)
	e.codes.err = errBoom
	r := e.login(e.browser(), authorizeURL("response_type", "code", "client_id", "trusted", "state", "z"))
	loc := location(t, r)
	if loc.Query().Get("error") != "server_error" || loc.Query().Get("state") != "z" {
		t.Errorf("redirect %s", loc)
	}
}

func TestCrossOriginPost(t *testing.T) {
	e := newEnv(t, false)
	path := authorizeURL("response_type", "code", "client_id", "mezzo")
	creds := url.Values{"username": {"alice"}, "password": {alicePassword}}
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"sec-fetch-site", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"same-site is not same-origin", []string{"Origin", "https://other.example.org", "Sec-Fetch-Site", "same-site"}},
		{"old browser origin only", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			f := parseForm(t, e.get(c, path))
			r := e.submit(c, f, creds, "", tc.hdr...)
			if r.StatusCode != http.StatusForbidden || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Errorf("status %d %q, want a 403 page", r.StatusCode, r.Header.Get("Content-Type"))
			}
			if r.Header.Get("X-Frame-Options") != "DENY" {
				t.Error("403 page without security headers")
			}
		})
	}
	t.Run("from the public URL, in other case", func(t *testing.T) {
		e := newEnv(t, false, func(c *Config) { c.PublicURL = "http://Auth.Example:9000/" })
		c := e.browser()
		f := parseForm(t, e.get(c, path))
		f.action, _ = url.Parse(e.srv.URL + "/o/authorize/?" + f.action.RawQuery)
		// Behind the proxy the Host header is the server's, not the public one.
		r := e.submit(c, f, creds, "", "Origin", "http://auth.example:9000", "Sec-Fetch-Site", "cross-site")
		if r.StatusCode != http.StatusSeeOther {
			t.Errorf("status %d, want 303 after the login: the public origin is trusted", r.StatusCode)
		}
	})
	t.Run("logout", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accounts/logout/", nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if r := e.do(e.noRedirect(), req); r.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.StatusCode)
		}
	})
	if e.codes.count() != 0 {
		t.Error("code issued")
	}
}

func TestCSRFToken(t *testing.T) {
	e := newEnv(t, false)
	path := authorizeURL("response_type", "code", "client_id", "mezzo")
	creds := url.Values{"username": {"alice"}, "password": {alicePassword}}
	other := e.browser()
	otherToken := parseForm(t, e.get(other, path)).fields.Get("csrf_token")

	for _, tc := range []struct {
		name  string
		token []string // nil: field removed
	}{
		{"missing", nil},
		{"empty", []string{""}},
		{"wrong", []string{"x" + otherToken[1:]}},
		{"another session's", []string{otherToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			f := parseForm(t, e.get(c, path))
			if tc.token == nil {
				f.fields.Del("csrf_token")
			} else {
				f.fields["csrf_token"] = tc.token
			}
			r := e.submit(c, f, creds, "")
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", r.StatusCode)
			}
		})
	}
	t.Run("no cookie", func(t *testing.T) {
		c := e.browser()
		f := parseForm(t, e.get(c, path))
		c.Jar = nil
		if r := e.submit(c, f, creds, ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.StatusCode)
		}
	})
	t.Run("consent", func(t *testing.T) {
		c := e.browser()
		r := e.login(c, path)
		f := parseForm(t, r)
		f.fields.Set("csrf_token", otherToken)
		if r := e.submit(c, f, nil, "allow"); r.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.StatusCode)
		}
	})
	t.Run("login token is dead after login", func(t *testing.T) {
		c := e.browser()
		loginForm := parseForm(t, e.get(c, path))
		e.submit(c, loginForm, creds, "")
		if r := e.submit(c, loginForm, url.Values{"allow": {"Authorize"}}, ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.StatusCode)
		}
	})
	if e.codes.count() != 0 {
		t.Error("code issued")
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tls        bool
		publicURL  string
		wantSecure bool
	}{
		{"http", false, "", false},
		{"tls", true, "", true},
		{"https public url", false, "https://auth.example/", true},
		{"http public url", false, "http://localhost:9000", false},
		{"https public url in capitals", false, "HTTPS://Auth.Example/", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tls, func(c *Config) { c.PublicURL = tc.publicURL })
			check := func(r response, what string) {
				t.Helper()
				ck := r.sessionCookie()
				if ck == nil {
					t.Fatalf("%s: no %s cookie in %q", what, CookieName, r.Header.Values("Set-Cookie"))
				}
				if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure != tc.wantSecure {
					t.Errorf("%s: cookie %q", what, ck.String())
				}
				for _, raw := range r.Header.Values("Set-Cookie") {
					if strings.HasPrefix(raw, "sessionid=") || strings.HasPrefix(raw, "csrftoken=") {
						t.Errorf("%s: Django cookie name used: %q", what, raw)
					}
				}
			}
			// No jar: a Secure cookie over plain HTTP is sent by hand.
			c := e.noRedirect()
			c.Jar = nil
			r := e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo"))
			check(r, "login page")
			cookie := CookieName + "=" + r.sessionCookie().Value
			if len(r.sessionCookie().Value) != 43 {
				t.Errorf("cookie value %q is not 32 bytes base64url", r.sessionCookie().Value)
			}
			f := parseForm(t, r)
			// Without a public URL the form action is relative.
			if tc.publicURL == "" && !strings.HasPrefix(attrAction(r.body), "/o/authorize/?") {
				t.Errorf("form action %q, want relative", attrAction(r.body))
			}
			if tc.publicURL != "" && !strings.HasPrefix(attrAction(r.body), strings.TrimRight(tc.publicURL, "/")+"/o/authorize/?") {
				t.Errorf("form action %q, want under %s", attrAction(r.body), tc.publicURL)
			}
			f.action, _ = url.Parse(e.srv.URL + "/o/authorize/?" + f.action.RawQuery)
			r = e.submit(c, f, url.Values{"username": {"alice"}, "password": {alicePassword}}, "", "Cookie", cookie)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: status %d", r.StatusCode)
			}
			check(r, "login")
			r = e.get(c, "/accounts/logout/")
			check(r, "logout")
			if ck := r.sessionCookie(); ck == nil || ck.MaxAge >= 0 {
				t.Errorf("logout cookie %q does not expire", ck.String())
			}
		})
	}
}

// attrAction returns the raw action attribute of the page's form.
func attrAction(body string) string {
	_, rest, _ := strings.Cut(body, `action="`)
	a, _, _ := strings.Cut(rest, `"`)
	return strings.ReplaceAll(a, "&amp;", "&")
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	pages := map[string]response{}
	pages["login"] = e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo"))
	pages["consent"] = e.submit(c, parseForm(t, pages["login"]), url.Values{"username": {"alice"}, "password": {alicePassword}}, "")
	pages["error"] = e.get(c, authorizeURL("client_id", "nobody"))
	pages["not found"] = e.get(c, "/logout_redirect/nobody")
	for name, r := range pages {
		t.Run(name, func(t *testing.T) {
			h := r.Header
			for k, want := range map[string]string{
				"X-Frame-Options":        "DENY",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"Cache-Control":          "no-store",
				"Content-Type":           "text/html; charset=utf-8",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "style-src 'nonce-"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if name == "login" || name == "consent" {
				if !strings.Contains(csp, "form-action 'self' https://example.org;") {
					t.Errorf("CSP %q: form-action must allow the redirect to the client", csp)
				}
			} else if !strings.Contains(csp, "form-action 'none';") {
				t.Errorf("CSP %q: a page without a form allows form actions", csp)
			}
			// The inline style sheet carries the nonce of the header.
			_, n, _ := strings.Cut(csp, "'nonce-")
			n, _, _ = strings.Cut(n, "'")
			if !strings.Contains(r.body, `<style nonce="`+n+`">`) {
				t.Errorf("style sheet without the CSP nonce %q", n)
			}
			if !strings.Contains(r.body, `name="viewport"`) {
				t.Error("no viewport meta")
			}
		})
	}
	// Redirects to the client carry no-store and no-referrer too.
	r := e.submit(c, parseForm(t, pages["consent"]), nil, "allow")
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("redirect headers %v", r.Header)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct{ name, next, want string }{
		{"none", "", "/"},
		{"relative", "/accounts/profile/?tab=1", "/accounts/profile/?tab=1"},
		{"foreign", "https://evil.example/x", "/"},
		{"protocol relative", "//evil.example", "/"},
		{"backslash", `/\evil.example`, "/"},
		{"backslash 2", `\\evil.example`, "/"},
		{"tab", "/\t/evil.example", "/"},
		{"no slash", "evil.example", "/"},
		{"javascript", "javascript:alert(1)", "/"},
		{"registered origin", "https://example.org/home", "https://example.org/home"},
		{"registered origin in capitals", "HTTPS://EXAMPLE.org/home", "https://EXAMPLE.org/home"},
		{"origin registered in capitals", "https://caps.example/x", "https://caps.example/x"},
		{"registered origin with port", "http://localhost:8000/", "http://localhost:8000/"},
		{"registered host other port", "http://localhost:8001/", "/"},
		{"registered origin other scheme", "http://example.org/", "/"},
		{"userinfo", "https://evil.example@example.org/", "/"},
		{"suffix", "https://example.org.evil.example/", "/"},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				c := e.browser()
				e.login(c, authorizeURL("response_type", "code", "client_id", "trusted"))
				if e.auth.sessions.len() == 0 {
					t.Fatal("no session after login")
				}
				var req *http.Request
				v := url.Values{}
				if tc.next != "" {
					v.Set("next", tc.next)
				}
				if method == http.MethodGet {
					req, _ = http.NewRequest(method, e.srv.URL+"/accounts/logout/?"+v.Encode(), nil)
				} else {
					req, _ = http.NewRequest(method, e.srv.URL+"/accounts/logout/", strings.NewReader(v.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Sec-Fetch-Site", "same-origin")
				}
				c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				r := e.do(c, req)
				if r.StatusCode != http.StatusFound || r.Header.Get("Location") != tc.want {
					t.Errorf("status %d Location %q, want 302 %q", r.StatusCode, r.Header.Get("Location"), tc.want)
				}
				// The session is over: authorize shows the login page again.
				wantPage(t, e.get(c, authorizeURL("response_type", "code", "client_id", "trusted")), "Sign in to Trusted", "after logout: the login page")
			})
		}
	}
}

func TestLogoutRedirect(t *testing.T) {
	e := newEnv(t, false)
	c := e.browser()
	e.login(c, authorizeURL("response_type", "code", "client_id", "trusted"))
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := e.get(c, "/logout_redirect/Multi")
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "https://app.example/" {
		t.Errorf("status %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	if ck := r.sessionCookie(); ck == nil || ck.MaxAge >= 0 {
		t.Error("session cookie not expired")
	}
	wantPage(t, e.get(c, authorizeURL("response_type", "code", "client_id", "trusted")), "Sign in to Trusted", "after logout_redirect: the login page")
	r = e.get(c, "/logout_redirect/nobody")
	if r.StatusCode != http.StatusNotFound || r.Header.Get("Location") != "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown name: status %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestLoginHint(t *testing.T) {
	e := newEnv(t, false)
	t.Run("enabled client", func(t *testing.T) {
		r := e.get(e.noRedirect(), authorizeURL("response_type", "code", "client_id", "ci", "login_hint", "alice", "state", "h"))
		loc := location(t, r)
		if loc.Host != "ci.example:8080" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "h" {
			t.Errorf("redirect %s", loc)
		}
		if got := e.codes.last(t); got.Username != "alice" || got.UserID != 1 || got.ClientID != "ci" {
			t.Errorf("CodeRequest %+v", got)
		}
	})
	t.Run("enabled client, unknown user", func(t *testing.T) {
		n := e.codes.count()
		loc := location(t, e.get(e.noRedirect(), authorizeURL("response_type", "code", "client_id", "ci", "login_hint", "mallory", "state", "h")))
		if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "h" {
			t.Errorf("redirect %s", loc)
		}
		if e.codes.count() != n {
			t.Error("code issued")
		}
	})
	t.Run("other client pre-fills", func(t *testing.T) {
		n := e.codes.count()
		r := e.get(e.noRedirect(), authorizeURL("response_type", "code", "client_id", "mezzo", "login_hint", "alice"))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want the login page", r.StatusCode)
		}
		if got := parseForm(t, r).fields.Get("username"); got != "alice" {
			t.Errorf("username field %q, want alice", got)
		}
		if e.codes.count() != n {
			t.Error("code issued")
		}
	})
}

func TestHostileInput(t *testing.T) {
	e := newEnv(t, false)
	long := strings.Repeat("s", 10_000)
	t.Run("long state", func(t *testing.T) {
		c := e.browser()
		r := e.login(c, authorizeURL("response_type", "code", "client_id", "mezzo", "state", long))
		r = e.submit(c, parseForm(t, r), nil, "allow")
		if got := location(t, r).Query().Get("state"); got != long {
			t.Errorf("state of %d bytes, want %d", len(got), len(long))
		}
	})
	for _, q := range []string{
		"response_type=code&client_id=mezzo&state=" + long + "%00%ff<script>",
		"response_type=code&client_id=%00",
		"response_type=code&client_id=mezzo&scope=%00",
		"response_type=code&client_id=mezzo&redirect_uri=%3A%2F%2F",
		"client_id=mezzo&response_type=code&code_challenge=" + strings.Repeat("%ff", 50),
		"client_id=mezzo&response_type=code&login_hint=" + strings.Repeat("%2A", 300),
		"=&&&=x",
		"",
	} {
		r := e.get(e.noRedirect(), "/o/authorize/?"+q)
		if r.StatusCode >= 500 {
			t.Errorf("%.60s: status %d", q, r.StatusCode)
		}
	}
	t.Run("huge form", func(t *testing.T) {
		c := e.browser()
		f := parseForm(t, e.get(c, authorizeURL("response_type", "code", "client_id", "mezzo")))
		r := e.submit(c, f, url.Values{"username": {strings.Repeat("u", 100_000)}, "password": {"x"}}, "")
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", r.StatusCode)
		}
		r = e.submit(c, f, url.Values{"username": {strings.Repeat("(*)", 1000)}, "password": {"x"}}, "")
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", r.StatusCode)
		}
	})
	t.Run("wrong methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/o/authorize/", nil)
		if r := e.do(e.noRedirect(), req); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PUT: status %d", r.StatusCode)
		}
	})
	t.Run("junk cookie", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+authorizeURL("response_type", "code", "client_id", "mezzo"), nil)
		req.AddCookie(&http.Cookie{Name: CookieName, Value: strings.Repeat("A", 43)})
		if r := e.do(e.noRedirect(), req); r.StatusCode != http.StatusOK || r.sessionCookie() == nil {
			t.Errorf("status %d, want the login page with a fresh cookie", r.StatusCode)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.SessionTTL = 2 * time.Hour })
	c := e.browser()
	path := authorizeURL("response_type", "code", "client_id", "trusted")
	location(t, e.login(c, path))
	e.clock.Advance(time.Hour)
	location(t, e.get(c, path)) // still signed in
	e.clock.Advance(time.Hour)
	wantPage(t, e.get(c, path), "Sign in", "after the TTL: the login page")
	// The login form's session lasts an hour at most.
	f := parseForm(t, e.get(c, path))
	e.clock.Advance(61 * time.Minute)
	if r := e.submit(c, f, url.Values{"username": {"alice"}, "password": {alicePassword}}, ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("stale login form: status %d, want 403", r.StatusCode)
	}
}

func TestSessionStorePurge(t *testing.T) {
	clk := testkit.NewClock(time.Unix(0, 0))
	st := newSessionStore(clk.Now, time.Hour)
	for range 10 {
		st.create(0, "")
	}
	id, _ := st.create(1, "alice")
	clk.Advance(2 * time.Hour)
	st.create(0, "")
	if n := st.len(); n != 1 {
		t.Errorf("%d sessions after purge, want 1", n)
	}
	if _, ok := st.get(id); ok {
		t.Error("expired session returned")
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Clients") || !strings.Contains(err.Error(), "Codes") {
		t.Errorf("New(Config{}) = %v, want every missing dependency named", err)
	}
	base := Config{Clients: clients.NewRegistry(nil), Users: &users.Store{}, Codes: &fakeCodes{}}
	for _, bad := range []string{"auth.example", "ftp://auth.example", "https://auth.example/?x=1", "https:///x"} {
		cfg := base
		cfg.PublicURL = bad
		if _, err := New(cfg); err == nil {
			t.Errorf("PublicURL %q accepted", bad)
		}
	}
	cfg := base
	cfg.SessionTTL = -time.Second
	if _, err := New(cfg); err == nil {
		t.Error("negative SessionTTL accepted")
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("response_type=code&client_id=mezzo&redirect_uri=https%3A%2F%2Fexample.org%2Fcb&state=x")
	f.Add("response_type=code&client_id=multi&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Ftenant%3D1&code_challenge=" + strings.Repeat("a", 43))
	f.Add("client_id=mezzo&scope=read+write&scope=x")
	f.Add("%zz;&&=")
	s, err := New(Config{Clients: clients.NewRegistry(testClients), Users: &users.Store{}, Codes: &fakeCodes{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		req, err := s.parseRequest(q)
		if _, page := err.(*badRequest); page || req == nil {
			if err == nil {
				t.Fatal("nil request without error")
			}
			return
		}
		if _, ok := req.client.RedirectURI(req.redirectURI); !ok {
			t.Fatalf("redirect URI %q not registered for %s", req.redirectURI, req.client.ID)
		}
		if err == nil && !req.client.AllowsScope(req.scope) {
			t.Fatalf("scope %q accepted", req.scope)
		}
	})
}
