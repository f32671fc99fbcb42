package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ircam/ircam-auth/internal/testkit"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// testServer is the whole server on httptest, as run wires it.
type testServer struct {
	*httptest.Server
	app  *app
	logs *testkit.SyncBuffer // the server's log
}

// newTestServer starts the server with args on free ports with cheap
// hashes, logging in text; the log is shown when the test fails.
func newTestServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	return newTestServerLogging(t, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }, args...)
}

// newTestServerLogging is newTestServer with the log written by the
// handler that handler makes.
func newTestServerLogging(t *testing.T, handler func(io.Writer) slog.Handler, args ...string) *testServer {
	t.Helper()
	cfg, err := parseConfig(append([]string{"--ldap-listen", freeAddr(t), "--bcrypt-cost", "4"}, args...), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	a, err := newApp(context.Background(), cfg, slog.New(handler(logs)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &testServer{Server: srv, app: a, logs: logs}
}

const mezzoCallback = "http://127.0.0.1:8001/accounts/ircamauth/login/callback/"

func (s *testServer) mezzo() *oauth2.Config {
	return &oauth2.Config{
		ClientID: "mezzo", ClientSecret: "mezzo-secret",
		Endpoint: oauth2.Endpoint{
			AuthURL: s.URL + "/o/authorize/", TokenURL: s.URL + "/o/token/",
			// As django-allauth does: the credentials in the form body.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: mezzoCallback,
		Scopes:      []string{"read"},
	}
}

// browser is a cookie-keeping client that stops at redirects leaving the
// server (to the client's callback).
type browser struct {
	t      *testing.T
	client *http.Client
	server string
}

func newBrowser(t *testing.T, server string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, server: server, client: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), server) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// form is an HTML form of a page.
type form struct {
	action string
	fields url.Values
	submit []string // names of submit buttons
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// post submits f from the page at pageURL with extra fields set, as a
// browser does (same-origin Origin header).
func (b *browser) post(pageURL string, f form, set map[string]string) (*http.Response, string) {
	b.t.Helper()
	action, err := url.Parse(pageURL)
	if err != nil {
		b.t.Fatal(err)
	}
	if action, err = action.Parse(f.action); err != nil {
		b.t.Fatal(err)
	}
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = append([]string(nil), vs...)
	}
	for k, val := range set {
		v.Set(k, val)
	}
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.server)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// parseForm returns the first form of page, failing the test when there
// is none.
func parseForm(t *testing.T, page string) form {
	t.Helper()
	f, err := findForm(page)
	if err != nil {
		t.Fatalf("%v:\n%s", err, page)
	}
	return f
}

// findForm returns the first form of page: its action, hidden and text
// inputs, and submit buttons.
func findForm(page string) (form, error) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return form{}, err
	}
	var f *form
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch {
			case n.Data == "form" && f == nil:
				f = &form{action: attr["action"], fields: url.Values{}}
			case f != nil && n.Data == "input" && attr["type"] != "submit" && attr["name"] != "":
				f.fields.Set(attr["name"], attr["value"])
			case f != nil && (n.Data == "button" || n.Data == "input") && attr["name"] != "":
				f.submit = append(f.submit, attr["name"])
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if f == nil {
		return form{}, errors.New("no form in the page")
	}
	return *f, nil
}

// login walks SPEC §1 steps 1-4 for the user and returns the code.
func (b *browser) login(authURL, username, password string) (code, state string) {
	b.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="username"`) || !strings.Contains(page, `name="password"`) {
		b.t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "Mezzo") {
		b.t.Error("the login page does not name the client")
	}
	loginURL := resp.Request.URL.String()
	resp, page = b.post(loginURL, parseForm(b.t, page), map[string]string{"username": username, "password": password})
	if resp.StatusCode != 200 || !strings.Contains(page, `name="allow"`) {
		b.t.Fatalf("after login, want the consent page; got %d\n%s", resp.StatusCode, page)
	}
	resp, _ = b.post(resp.Request.URL.String(), parseForm(b.t, page), map[string]string{"allow": "Authorize"})
	return callbackParams(b.t, resp)
}

func callbackParams(t *testing.T, resp *http.Response) (code, state string) {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("no redirect to the client: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(loc.String(), mezzoCallback+"?") {
		t.Fatalf("redirect to %s, want the client's callback", loc)
	}
	q := loc.Query()
	if q.Get("error") != "" {
		t.Fatalf("redirect with error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code"), q.Get("state")
}

// getProfile GETs /profile/ with the token as a Bearer token.
func getProfile(t *testing.T, server string, tok *oauth2.Token) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, server+"/profile/", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// profileOf reads /profile/ with the token, as the django-allauth
// provider does, into a map to check JSON types too.
func profileOf(t *testing.T, server string, tok *oauth2.Token) map[string]any {
	t.Helper()
	resp := getProfile(t, server, tok)
	defer resp.Body.Close()
	var p map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
		t.Fatalf("profile: %d %v", resp.StatusCode, err)
	}
	return p
}

// The whole sequence of SPEC §1, with golang.org/x/oauth2 as the client.
func TestLoginSequence(t *testing.T) {
	s := newTestServer(t)
	cases := []struct {
		user, password string
		want           map[string]any
	}{
		{"alice", "alice-pw", map[string]any{"id": 1.0, "ext_id": 1.0, "username": "alice", "email": "alice@example.org",
			"first_name": "Alice", "last_name": "Liddell", "avatar": "", "is_ldap_user": false}},
		{"bob", "bob-ldap-pw", map[string]any{"id": 2.0, "ext_id": 2.0, "username": "bob", "email": "bob@example.org",
			"first_name": "Bob", "last_name": "Moog", "avatar": "", "is_ldap_user": true}},
		{"carol", "carol-ldap-pw", map[string]any{"id": 10003.0, "ext_id": 10003.0, "username": "carol", "email": "carol@example.org",
			"first_name": "Carol", "last_name": "Danvers", "avatar": "", "is_ldap_user": true}},
	}
	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			conf := s.mezzo()
			verifier := oauth2.GenerateVerifier()
			code, state := newBrowser(t, s.URL).login(conf.AuthCodeURL("st-"+tc.user, oauth2.S256ChallengeOption(verifier)), tc.user, tc.password)
			if state != "st-"+tc.user || code == "" {
				t.Fatalf("code %q state %q", code, state)
			}
			tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Expiry.IsZero() {
				t.Errorf("token %+v", tok)
			}
			p := profileOf(t, s.URL, tok)
			if len(p) != len(tc.want) {
				t.Errorf("profile has fields %v, want exactly %v", p, tc.want)
			}
			for k, v := range tc.want {
				if p[k] != v {
					t.Errorf("profile %s = %#v, want %#v", k, p[k], v)
				}
			}
		})
	}
}

// The token request exactly as django-allauth sends it: client id and
// secret in the form body, no PKCE.
func TestDjangoAllauthTokenRequest(t *testing.T) {
	s := newTestServer(t)
	code, _ := newBrowser(t, s.URL).login(s.mezzo().AuthCodeURL("xyz"), "alice", "alice-pw")
	resp, err := http.PostForm(s.URL+"/o/token/", url.Values{
		"client_id": {"mezzo"}, "client_secret": {"mezzo-secret"},
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {mezzoCallback},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["access_token"] == nil || body["scope"] != "read" {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// A second authorization in the same browser session asks for neither
// the password nor consent again.
func TestSecondAuthorizationSkipsPages(t *testing.T) {
	s := newTestServer(t)
	b := newBrowser(t, s.URL)
	b.login(s.mezzo().AuthCodeURL("one"), "alice", "alice-pw")
	resp, _ := b.get(s.mezzo().AuthCodeURL("two"))
	if _, state := callbackParams(t, resp); state != "two" {
		t.Errorf("state %q", state)
	}
}

// carol, first seen through LDAP, keeps her id across a restart of the
// server with the same fixtures.
func TestDirectoryUserIDSurvivesRestart(t *testing.T) {
	idOf := func() any {
		s := newTestServer(t)
		conf := s.mezzo()
		code, _ := newBrowser(t, s.URL).login(conf.AuthCodeURL("s"), "carol", "carol-ldap-pw")
		tok, err := conf.Exchange(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		id := profileOf(t, s.URL, tok)["id"]
		s.Close()
		s.app.Close()
		return id
	}
	first, second := idOf(), idOf()
	if first != second || first == nil {
		t.Errorf("carol's id %v, then %v after a restart", first, second)
	}
}

// A user with a local password logs in while the directory is down; a
// directory user gets the "unavailable" page, not "wrong password".
func TestDirectoryDownAtLogin(t *testing.T) {
	s := newTestServer(t)
	s.app.dir.Close()
	b := newBrowser(t, s.URL)
	resp, page := b.get(s.mezzo().AuthCodeURL("s"))
	resp, page = b.post(resp.Request.URL.String(), parseForm(t, page), map[string]string{"username": "bob", "password": "bob-ldap-pw"})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "directory is unavailable") {
		t.Errorf("bob with the directory down: %d", resp.StatusCode)
	}
	if strings.Contains(page, "Invalid username or password") {
		t.Error("a directory outage is shown as a wrong password")
	}
	code, _ := newBrowser(t, s.URL).login(s.mezzo().AuthCodeURL("s"), "alice", "alice-pw")
	if code == "" {
		t.Error("alice could not log in with the directory down")
	}
	if status := getStatus(t, s.URL+"/healthz"); status != http.StatusServiceUnavailable {
		t.Errorf("healthz with the directory down: %d", status)
	}
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	s := newTestServer(t)
	pageFor := func(user, pw string) (int, string) {
		b := newBrowser(t, s.URL)
		resp, page := b.get(s.mezzo().AuthCodeURL("s"))
		resp, page = b.post(resp.Request.URL.String(), parseForm(t, page), map[string]string{"username": user, "password": pw})
		return resp.StatusCode, page
	}
	for _, c := range [][2]string{{"alice", "nope"}, {"bob", "nope"}, {"nobody", "nope"}, {"bob", ""}} {
		status, page := pageFor(c[0], c[1])
		if status != http.StatusUnauthorized || !strings.Contains(page, "Invalid username or password") {
			t.Errorf("%s/%q: %d", c[0], c[1], status)
		}
	}
}

func TestHomeAndUnknownPaths(t *testing.T) {
	s := newTestServer(t)
	if status := getStatus(t, s.URL+"/"); status != 200 {
		t.Errorf("/: %d", status)
	}
	if status := getStatus(t, s.URL+"/nope"); status != 404 {
		t.Errorf("/nope: %d", status)
	}
}

// getStatus GETs target and returns the status of the answer.
func getStatus(t *testing.T, target string) int {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
