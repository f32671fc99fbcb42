package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ircam/ircam-auth/internal/testkit"
	"golang.org/x/oauth2"
)

// The browser test drives Debian's Chromium through the whole login
// sequence of SPEC §1: a small OAuth2 client sends the browser to
// /o/authorize/, the user signs in and approves on the pages, the client
// exchanges the code (PKCE S256) and reads /profile/. It takes screenshots
// of the pages (set IRCAM_AUTH_ARTIFACTS to keep them; set
// IRCAM_AUTH_UPDATE_DOCS=1 to refresh docs/login.png and docs/consent.png).

// browserTimeout bounds the whole test, browser start included, so that a
// hang fails instead of blocking CI.
const browserTimeout = 60 * time.Second

// browserClientName is the name the pages must show.
const browserClientName = "Mezzo"

// findChromium returns the Chromium binary, or skips the test: a missing
// browser is the only reason to skip.
func findChromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("no chromium binary: install Debian's chromium (apt-get install chromium; scripts/test does it) to run the browser test")
	return ""
}

// artifactDir is where the screenshots go: $IRCAM_AUTH_ARTIFACTS, or a
// directory removed after the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IRCAM_AUTH_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserFixtures seed the server: a client whose redirect URI is the test
// client's callback, alice with a local password, bob with a directory
// password only, and the directory's service account.
func browserFixtures(redirectURI string) string {
	return fmt.Sprintf(`clients:
  - client_id: mezzo
    client_secret: mezzo-secret
    name: %s
    redirect_uris:
      - %s
    grant_types: [authorization_code, refresh_token]
    scopes: [read, write]

users:
  - id: 1
    username: alice
    password: alice-pw
    email: alice@example.org
    first_name: Alice
    last_name: Liddell
  - id: 2
    username: bob
    email: bob@example.org
    first_name: Bob
    last_name: Moog

directory:
  base_dn: dc=ircam,dc=fr
  service_account: ircam-auth
  groups:
    - name: people
      gid: 5501
    - name: services
      gid: 5502
  entries:
    - uid: ircam-auth
      password: ircam-auth-search-pw
      uidNumber: 10001
      groups: [services]
      search: true
    - uid: bob
      password: bob-ldap-pw
      mail: bob@example.org
      givenName: Bob
      sn: Moog
      uidNumber: 10002
      groups: [people]
`, browserClientName, redirectURI)
}

// testClient is a minimal OAuth2 client web site: /login sends the browser
// to the server, /callback exchanges the code and shows the profile.
type testClient struct {
	srv     *httptest.Server
	idpURL  string
	conf    *oauth2.Config
	mu      sync.Mutex
	pending map[string]string // state → PKCE verifier
}

const clientStateCookie = "testclient_state"

func (c *testClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		state, verifier := rand.Text(), oauth2.GenerateVerifier()
		c.mu.Lock()
		c.pending[state] = verifier
		c.mu.Unlock()
		// The server's session cookie lives on the same host (cookies
		// ignore ports): a name of our own keeps them apart.
		http.SetCookie(w, &http.Cookie{Name: clientStateCookie, Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, c.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	case "/callback":
		profile, err := c.callback(r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		ok := "true"
		if err != nil {
			ok, profile = "false", err.Error()
			w.WriteHeader(http.StatusBadGateway)
		}
		fmt.Fprintf(w, "<!DOCTYPE html><link rel=\"icon\" href=\"data:,\"><title>Test client</title><h1>Test client</h1><pre id=\"result\" data-ok=\"%s\">%s</pre>\n", ok, html.EscapeString(profile))
	default:
		http.NotFound(w, r)
	}
}

// callback checks the state, exchanges the code and returns the profile.
func (c *testClient) callback(r *http.Request) (string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	state := q.Get("state")
	cookie, err := r.Cookie(clientStateCookie)
	if err != nil || state == "" || cookie.Value != state {
		return "", fmt.Errorf("state %q does not match this browser's %v", state, cookie)
	}
	c.mu.Lock()
	verifier, ok := c.pending[state]
	delete(c.pending, state)
	c.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("unknown or replayed state %q", state)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := c.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	if tok.Type() != "Bearer" {
		return "", fmt.Errorf("token type %q", tok.Type())
	}
	resp, err := c.conf.Client(ctx, tok).Get(c.idpURL + "/profile/")
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("profile: %s: %s", resp.Status, body)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		return "", fmt.Errorf("profile is not JSON: %w: %s", err, body)
	}
	return pretty.String(), nil
}

// startBrowserServers starts the test client and, in-process, the server
// seeded for it with its embedded directory.
func startBrowserServers(t *testing.T) (client *testClient) {
	t.Helper()
	client = &testClient{pending: map[string]string{}}
	client.srv = httptest.NewServer(client)
	t.Cleanup(client.srv.Close)

	fixturesPath := filepath.Join(t.TempDir(), "browser.yaml")
	if err := os.WriteFile(fixturesPath, []byte(browserFixtures(client.srv.URL+"/callback")), 0o600); err != nil {
		t.Fatal(err)
	}
	idp := newTestServer(t, "--fixtures", fixturesPath)
	client.idpURL = idp.URL
	client.conf = &oauth2.Config{
		ClientID:     "mezzo",
		ClientSecret: "mezzo-secret",
		Endpoint: oauth2.Endpoint{
			AuthURL:   idp.URL + "/o/authorize/",
			TokenURL:  idp.URL + "/o/token/",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: client.srv.URL + "/callback",
		Scopes:      []string{"read"},
	}
	return client
}

// startChromium starts a headless Chromium bound to ctx and returns the
// context of its first tab.
func startChromium(t *testing.T, ctx context.Context, execPath string) context.Context {
	t.Helper()
	var output testkit.SyncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&output),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	// Registered after t.TempDir: runs first, and waits for Chromium to
	// exit before its profile directory is removed.
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", output.String())
		}
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v\n%s", execPath, err, output.String())
	}
	return browserCtx
}

// viewport is a device the pages are looked at with.
type viewport struct {
	name   string
	action chromedp.Action[chromedp.Void]
	phone  bool
}

var (
	desktop = viewport{name: "desktop", action: chromedp.EmulateViewport(1024, 720)}
	phone   = viewport{name: "phone", phone: true, action: chromedp.EmulateViewport(390, 844,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)}
)

// tab is one browser tab in a fresh browser context (no cookies shared
// with the other tabs), with the console messages it collected.
type tab struct {
	t         *testing.T
	ctx       context.Context
	vp        viewport
	artifacts string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newTab(t *testing.T, browserCtx context.Context, vp viewport, artifacts string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, ctx: ctx, vp: vp, artifacts: artifacts}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, m := range tb.console {
			// A page the CSP broke (a style or a form post refused) says
			// so in the console, as a security message.
			if m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
				t.Errorf("CSP violation on %s: %s", m.URL, m)
			} else {
				t.Logf("console: %s (%s)", m, m.URL)
			}
		}
	})
	tb.do(vp.action)
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s", tb.describe(err))
	}
}

func evaluate[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %s", js, tb.describe(err))
	}
	return v
}

// describe adds where the browser is to an error.
func (tb *tab) describe(err error) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tb.ctx), 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return fmt.Sprintf("%v\nat %s, the page says:\n%s", err, loc, text)
}

// press clicks a button, or taps it on a phone.
func (tb *tab) press(sel string) {
	tb.t.Helper()
	if tb.vp.phone {
		tb.do(chromedp.Tap(chromedp.CSS(sel)))
	} else {
		tb.do(chromedp.Click(chromedp.CSS(sel)))
	}
}

// screenshot saves the whole page as <name>-<viewport>.png, and as
// docs/<docsName>.png when IRCAM_AUTH_UPDATE_DOCS=1.
func (tb *tab) screenshot(name, docsName string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %s", name, tb.describe(err))
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		tb.t.Fatalf("screenshot %s is not a PNG", name)
	}
	path := filepath.Join(tb.artifacts, name+"-"+tb.vp.name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
	if docsName != "" && os.Getenv("IRCAM_AUTH_UPDATE_DOCS") == "1" {
		path := filepath.Join("..", "..", "docs", docsName+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
		tb.t.Logf("updated %s", path)
	}
}

// checkPage checks what every page must be: labelled inputs, and on a
// phone, no sideways scrolling.
func (tb *tab) checkPage(what string) {
	tb.t.Helper()
	if unlabelled := evaluate[[]string](tb, `Array.from(document.querySelectorAll('input:not([type=hidden])')).filter(i => i.labels.length === 0).map(i => i.name)`); len(unlabelled) > 0 {
		tb.t.Errorf("%s: inputs without a label: %v", what, unlabelled)
	}
	if tb.vp.phone {
		if w := evaluate[[]int](tb, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			tb.t.Errorf("%s: the page is %d px wide on a %d px wide screen", what, w[0], w[1])
		}
	}
}

// login goes from the client's /login to the login page, takes its
// screenshot (<case>-login), and submits the credentials.
func (tb *tab) login(client *testClient, username, password, shot, docs string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(client.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	if h1 := evaluate[string](tb, `document.querySelector('h1').innerText`); !strings.Contains(h1, browserClientName) {
		tb.t.Errorf("login page heading %q does not name the client %q", h1, browserClientName)
	}
	tb.checkPage("login page")
	tb.screenshot(shot+"-login", docs)
	tb.do(
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
	)
	tb.press(`form button[type=submit]`)
}

func TestBrowserLogin(t *testing.T) {
	chromium := findChromium(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	artifacts := artifactDir(t)
	client := startBrowserServers(t)
	browserCtx := startChromium(t, ctx, chromium)
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))

	for _, tc := range []struct {
		username, password, email string
		ldap                      bool
		vp                        viewport
		docs                      bool
	}{
		{username: "alice", password: "alice-pw", email: "alice@example.org", ldap: false, vp: desktop, docs: true},
		{username: "bob", password: "bob-ldap-pw", email: "bob@example.org", ldap: true, vp: phone},
	} {
		t.Run(tc.username, func(t *testing.T) {
			tb := newTab(t, browserCtx, tc.vp, artifacts)
			loginDocs, consentDocs := "", ""
			if tc.docs {
				loginDocs, consentDocs = "login", "consent"
			}
			tb.login(client, tc.username, tc.password, tc.username, loginDocs)

			tb.do(chromedp.WaitVisible(chromedp.CSS(`button[name=allow], #error`)))
			if msg := evaluate[string](tb, `(document.querySelector('#error') || {}).innerText || ''`); msg != "" {
				t.Fatalf("after login, an error: %s", msg)
			}
			page := evaluate[string](tb, `document.querySelector('main').innerText`)
			for _, want := range []string{browserClientName, tc.username} {
				if !strings.Contains(page, want) {
					t.Errorf("consent page lacks %q:\n%s", want, page)
				}
			}
			tb.checkPage("consent page")
			tb.screenshot(tc.username+"-consent", consentDocs)
			tb.press(`button[name=allow]`)

			tb.do(chromedp.WaitVisible(chromedp.CSS(`#result`)))
			result := evaluate[[2]string](tb, `(r => [r.dataset.ok, r.innerText])(document.querySelector('#result'))`)
			if result[0] != "true" {
				t.Fatalf("the client failed: %s", result[1])
			}
			var profile struct {
				ID         *int64 `json:"id"`
				Username   string `json:"username"`
				Email      string `json:"email"`
				IsLDAPUser *bool  `json:"is_ldap_user"`
			}
			if err := json.Unmarshal([]byte(result[1]), &profile); err != nil {
				t.Fatalf("profile %q: %v", result[1], err)
			}
			if profile.Username != tc.username || profile.Email != tc.email || profile.IsLDAPUser == nil || *profile.IsLDAPUser != tc.ldap || profile.ID == nil {
				t.Errorf("profile %s; want username %s, email %s, is_ldap_user %v", result[1], tc.username, tc.email, tc.ldap)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		tb := newTab(t, browserCtx, phone, artifacts)
		tb.login(client, "alice", "not-alice-pw", "wrong-password", "")
		tb.do(chromedp.WaitVisible(chromedp.CSS(`#error`)))
		if msg := evaluate[string](tb, `document.querySelector('#error').innerText`); !strings.Contains(msg, "Invalid username or password") {
			t.Errorf("error message %q", msg)
		}
		if v := evaluate[string](tb, `document.querySelector('input[name=username]').value`); v != "alice" {
			t.Errorf("the username field holds %q after the failure, want alice", v)
		}
		if n := evaluate[int](tb, `document.querySelectorAll('button[name=allow]').length`); n != 0 {
			t.Error("a consent button after a wrong password")
		}
		tb.checkPage("login page with an error")
		tb.screenshot("wrong-password-error", "")
	})

	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the browser test took longer than %v", browserTimeout)
	}
	t.Logf("browser test: %v", time.Since(start).Round(time.Millisecond))
}
