package authorize

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"
)

// fakeCodes records the requests it is asked to issue codes for.
type fakeCodes struct {
	mu   sync.Mutex
	reqs []grant.CodeRequest
	err  error
}

func (f *fakeCodes) IssueCode(_ context.Context, req grant.CodeRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.reqs = append(f.reqs, req)
	return "code-" + string(rune('a'+len(f.reqs)-1)), nil
}

func (f *fakeCodes) last(t *testing.T) grant.CodeRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no code was issued")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeCodes) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// fakeDir is a directory that is always down.
type fakeDir struct{}

func (fakeDir) Authenticate(context.Context, string, string) (ldapbind.Entry, error) {
	return ldapbind.Entry{}, ldapbind.ErrUnavailable
}

const (
	alicePassword = "alice-secret"
	mezzoRedirect = "https://example.org/cb"
)

var testClients = []fixtures.Client{
	{ClientID: "mezzo", ClientSecret: "s1", Name: "Mezzo", RedirectURIs: []string{mezzoRedirect}},
	{ClientID: "multi", ClientSecret: "s2", Name: "Multi", RedirectURIs: []string{
		"https://app.example/cb?tenant=1", "http://localhost:8000/accounts/ircamauth/login/callback/",
	}},
	{ClientID: "trusted", ClientSecret: "s3", Name: "Trusted", SkipAuthorization: true,
		RedirectURIs: []string{"https://trusted.example/cb"}},
	{ClientID: "limited", ClientSecret: "s4", Name: "Limited", Scopes: []string{"read"},
		RedirectURIs: []string{"https://limited.example/cb"}},
	{ClientID: "ci", ClientSecret: "s5", Name: "CI", LoginHint: true,
		RedirectURIs: []string{"http://ci.example:8080/cb"}},
	{ClientID: "caps", ClientSecret: "s6", Name: "Caps",
		RedirectURIs: []string{"HTTPS://Caps.Example/cb"}},
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	codes *fakeCodes
	clock *testkit.Clock
	logs  *testkit.SyncBuffer
	auth  *Server
}

type envOption func(*Config)

func newEnv(t *testing.T, tls bool, opts ...envOption) *env {
	t.Helper()
	store, err := users.NewStore(testkit.AliceAndBob(t, alicePassword), nil, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, codes: &fakeCodes{}, clock: testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)), logs: &testkit.SyncBuffer{}}
	cfg := Config{
		Clients: clients.NewRegistry(testClients),
		Users:   store,
		Codes:   e.codes,
		Logger:  slog.New(slog.NewTextHandler(e.logs, nil)),
		Now:     e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.auth, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.auth.Register(mux)
	if tls {
		e.srv = httptest.NewTLSServer(mux)
	} else {
		e.srv = httptest.NewServer(mux)
	}
	t.Cleanup(e.srv.Close)
	return e
}

// browser returns a client with a cookie jar that follows redirects on the
// server and stops at a redirect anywhere else (to the client).
func (e *env) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.srv.Client()
	c.Jar = jar
	host := e.srv.Listener.Addr().String()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host || len(via) > 5 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return c
}

// noRedirect returns a client with a jar that never follows redirects.
func (e *env) noRedirect() *http.Client {
	c := e.browser()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func authorizeURL(params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Add(params[i], params[i+1])
	}
	return "/o/authorize/?" + v.Encode()
}

type response struct {
	*http.Response
	body string
}

func (e *env) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{resp, string(b)}
}

func (e *env) get(c *http.Client, path string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(c, req)
}

// form is an HTML form as a browser would see it.
type form struct {
	action  *url.URL
	method  string
	fields  url.Values        // inputs with a name, other than submit buttons
	buttons map[string]string // submit button name → value
	labels  map[string]string // label for= → text
	inputs  map[string]string // input name → type
}

// parseForm finds the single form of a page and resolves its action
// against the page's URL.
func parseForm(t *testing.T, r response) form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	var forms []form
	labels := map[string]string{}
	var walk func(n *html.Node, f *form)
	walk = func(n *html.Node, f *form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				nf := form{method: strings.ToUpper(attr(n, "method")), fields: url.Values{},
					buttons: map[string]string{}, inputs: map[string]string{}}
				a, err := r.Request.URL.Parse(attr(n, "action"))
				if err != nil {
					t.Fatalf("form action %q: %v", attr(n, "action"), err)
				}
				nf.action = a
				forms = append(forms, nf)
				f = &forms[len(forms)-1]
			case "input":
				if f != nil && attr(n, "name") != "" {
					f.fields.Add(attr(n, "name"), attr(n, "value"))
					f.inputs[attr(n, "name")] = attr(n, "type")
				}
			case "button":
				if f != nil && attr(n, "name") != "" {
					f.buttons[attr(n, "name")] = attr(n, "value")
				}
			case "label":
				labels[attr(n, "for")] = text(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	if len(forms) != 1 {
		t.Fatalf("page has %d forms, want 1:\n%s", len(forms), r.body)
	}
	forms[0].labels = labels
	return forms[0]
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// submit posts f with its fields, overridden by set, and the button named
// button (none when "").
func (e *env) submit(c *http.Client, f form, set url.Values, button string, hdr ...string) response {
	e.t.Helper()
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = append([]string(nil), vs...)
	}
	for k, vs := range set {
		v[k] = vs
	}
	if button != "" {
		v.Set(button, f.buttons[button])
	}
	req, err := http.NewRequest(f.method, f.action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// What a browser sends for a form of the page itself.
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(c, req)
}

// login opens path, signs in as alice and returns the response after the
// login form, having followed redirects on the server.
func (e *env) login(c *http.Client, path string) response {
	e.t.Helper()
	r := e.get(c, path)
	if r.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: status %d, want the login page:\n%s", path, r.StatusCode, r.body)
	}
	f := parseForm(e.t, r)
	return e.submit(c, f, url.Values{"username": {"alice"}, "password": {alicePassword}}, "")
}

// location parses the Location of a redirect to the client.
func location(t *testing.T, r response) *url.URL {
	t.Helper()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302:\n%s", r.StatusCode, r.body)
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sessionCookie returns the session cookie r sets, or nil.
func (r response) sessionCookie() *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	return nil
}

// wantPage fails t unless r is a 200 page that contains text; what says
// which page was wanted.
func wantPage(t *testing.T, r response, text, what string) {
	t.Helper()
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, text) {
		t.Errorf("%s: status %d, want the page with %q:\n%s", what, r.StatusCode, text, r.body)
	}
}

var errBoom = errors.New("boom")
