package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
	"github.com/ircam/ircam-auth/internal/throttle"
)

// embedded returns the server's embedded directory.
func (s *testServer) embedded() *ldapbind.Directory {
	s.app.mu.RLock()
	defer s.app.mu.RUnlock()
	return s.app.dir
}

// passwordGrant asks for a token with the password grant as mezzo, and
// fails the test if the answer does not come (a hang, not a slow run).
func (s *testServer) passwordGrant(t *testing.T, username, password string) (*http.Response, map[string]any) {
	t.Helper()
	type answer struct {
		resp *http.Response
		body map[string]any
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.PostForm(s.URL+"/o/token/", url.Values{
			"client_id": {"mezzo"}, "client_secret": {"mezzo-secret"}, "grant_type": {"password"},
			"username": {username}, "password": {password}, "scope": {"read"},
		})
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		done <- answer{resp, body, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("password grant for %s: %v", username, a.err)
		}
		return a.resp, a.body
	case <-time.After(30 * time.Second):
		t.Fatalf("password grant for %s: no answer", username)
		return nil, nil
	}
}

func (s *testServer) healthz(t *testing.T) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// loginPage opens the authorization URL in a fresh browser and returns
// it with the login form.
func (s *testServer) loginPage(t *testing.T) (*browser, string, form) {
	b := newBrowser(t, s.URL)
	resp, page := b.get(s.mezzo().AuthCodeURL("st"))
	return b, resp.Request.URL.String(), parseForm(t, page)
}

// After too many failures for a username, the login form answers 429 with
// a clear message and checks no password: with the directory stopped,
// bob's right password gets "too many attempts", not "directory
// unavailable", which proves no bind was tried.
func TestLoginFormThrottle(t *testing.T) {
	s := newTestServer(t, "--login-max-failures-per-user", "3")
	b, pageURL, f := s.loginPage(t)
	for i := range 3 {
		resp, page := b.post(pageURL, f, map[string]string{"username": "bob", "password": "wrong"})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
		f = parseForm(t, page)
	}
	dir := s.embedded()
	dir.Close()
	defer dir.Restart(context.Background())
	for _, name := range []string{"bob", "BOB", " Bob "} {
		resp, page := b.post(pageURL, f, map[string]string{"username": name, "password": "bob-ldap-pw"})
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many failed attempts; try again in 5 minutes.") {
			t.Fatalf("%q after 3 failures: %d\n%s", name, resp.StatusCode, page)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 300 {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(page, `name="password"`) {
			t.Error("the throttled page has no login form")
		}
		f = parseForm(t, page)
	}
	// Failures of the form count for the password grant too.
	if resp, body := s.passwordGrant(t, "bob", "bob-ldap-pw"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("password grant for bob: %d %v", resp.StatusCode, body)
	}
	// Other users log in as usual.
	if code, _ := newBrowser(t, s.URL).login(s.mezzo().AuthCodeURL("s"), "alice", "alice-pw"); code == "" {
		t.Error("alice could not log in")
	}
}

// The password grant answers 429 with a JSON error once a username is
// over its limit, checking no password; a success resets the count.
func TestPasswordGrantThrottle(t *testing.T) {
	s := newTestServer(t, "--login-max-failures-per-user", "3", "--login-failure-window", "10m")
	for range 2 {
		if resp, body := s.passwordGrant(t, "alice", "wrong"); resp.StatusCode != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("wrong password: %d %v", resp.StatusCode, body)
		}
	}
	if resp, body := s.passwordGrant(t, "alice", "alice-pw"); resp.StatusCode != 200 {
		t.Fatalf("right password after 2 failures: %d %v", resp.StatusCode, body)
	}
	// The success reset alice's count: three more failures to the limit.
	for range 3 {
		if resp, body := s.passwordGrant(t, "Alice", "wrong"); resp.StatusCode != 400 {
			t.Fatalf("wrong password: %d %v", resp.StatusCode, body)
		}
	}
	resp, body := s.passwordGrant(t, "alice", "alice-pw")
	if resp.StatusCode != http.StatusTooManyRequests || body["error"] != "too_many_requests" ||
		!strings.Contains(body["error_description"].(string), "try again in 10 minutes") {
		t.Fatalf("over the limit: %d %v", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp, _ := s.passwordGrant(t, "bob", "bob-ldap-pw"); resp.StatusCode != 200 {
		t.Errorf("bob: %d", resp.StatusCode)
	}
}

// The per-address limit counts failures whatever the username.
func TestPerAddressThrottle(t *testing.T) {
	s := newTestServer(t, "--login-max-failures-per-user", "0", "--login-max-failures-per-ip", "4")
	for i := range 4 {
		if resp, _ := s.passwordGrant(t, "user"+strconv.Itoa(i), "x"); resp.StatusCode != 400 {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp, body := s.passwordGrant(t, "alice", "alice-pw"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("from the same address: %d %v", resp.StatusCode, body)
	}
	b, pageURL, f := s.loginPage(t)
	if resp, page := b.post(pageURL, f, map[string]string{"username": "alice", "password": "alice-pw"}); resp.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(page, "Too many failed attempts") {
		t.Errorf("the login form from the same address: %d", resp.StatusCode)
	}
}

func TestThrottleDisabled(t *testing.T) {
	s := newTestServer(t, "--login-max-failures-per-user", "0", "--login-max-failures-per-ip", "0")
	for range 15 {
		if resp, _ := s.passwordGrant(t, "alice", "wrong"); resp.StatusCode != 400 {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if resp, _ := s.passwordGrant(t, "alice", "alice-pw"); resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

func TestThrottleFlags(t *testing.T) {
	cfg, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoginMaxFailuresPerUser != throttle.DefaultMaxFailuresPerUser || cfg.LoginMaxFailuresPerIP != throttle.DefaultMaxFailuresPerIP ||
		cfg.LoginFailureWindow != throttle.DefaultWindow {
		t.Errorf("defaults: %d %d %v", cfg.LoginMaxFailuresPerUser, cfg.LoginMaxFailuresPerIP, cfg.LoginFailureWindow)
	}
	cfg, err = parseConfig([]string{"--login-max-failures-per-ip", "9"}, env(map[string]string{
		"IRCAM_AUTH_LOGIN_MAX_FAILURES_PER_USER": "7",
		"IRCAM_AUTH_LOGIN_MAX_FAILURES_PER_IP":   "8",
		"IRCAM_AUTH_LOGIN_FAILURE_WINDOW":        "90s",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoginMaxFailuresPerUser != 7 || cfg.LoginMaxFailuresPerIP != 9 || cfg.LoginFailureWindow != 90*time.Second {
		t.Errorf("from the environment and flags: %d %d %v", cfg.LoginMaxFailuresPerUser, cfg.LoginMaxFailuresPerIP, cfg.LoginFailureWindow)
	}
	_, err = parseConfig([]string{"--login-max-failures-per-user", "-1", "--login-failure-window", "0"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--login-max-failures-per-user") || !strings.Contains(err.Error(), "--login-failure-window") {
		t.Errorf("bad values: %v", err)
	}
}

// The embedded directory stops: directory users get 503 on the form and
// the grant, local users are unaffected, /healthz says which part fails.
// It starts again: everything recovers without a restart of the server.
func TestDirectoryStopsAndComesBack(t *testing.T) {
	s := newTestServer(t)
	dir := s.embedded()
	dir.Close()

	if resp, body := s.passwordGrant(t, "bob", "bob-ldap-pw"); resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("bob, directory stopped: %d %v", resp.StatusCode, body)
	}
	b, pageURL, f := s.loginPage(t)
	if resp, page := b.post(pageURL, f, map[string]string{"username": "carol", "password": "carol-ldap-pw"}); resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(page, "directory is unavailable") {
		t.Errorf("carol on the form, directory stopped: %d", resp.StatusCode)
	}
	if resp, _ := s.passwordGrant(t, "alice", "alice-pw"); resp.StatusCode != 200 {
		t.Errorf("alice, directory stopped: %d", resp.StatusCode)
	}
	if status, body := s.healthz(t); status != http.StatusServiceUnavailable || !strings.HasPrefix(body["directory"], "unavailable") || body["http"] != "ok" {
		t.Errorf("healthz, directory stopped: %d %v", status, body)
	}

	if err := dir.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, body := s.passwordGrant(t, "bob", "bob-ldap-pw"); resp.StatusCode != 200 {
		t.Errorf("bob, directory back: %d %v", resp.StatusCode, body)
	}
	if status, body := s.healthz(t); status != 200 || body["directory"] != "ok" {
		t.Errorf("healthz, directory back: %d %v", status, body)
	}
}

// An external directory that accepts and never answers, or drops the
// connection in the middle of a bind: directory logins fail with 503
// within --ldap-timeout, local ones work, /healthz reports it.
func TestExternalDirectoryFaults(t *testing.T) {
	faults := map[string]func(net.Conn){
		"silent":          ldaptest.Silent,
		"closes mid-bind": ldaptest.ClosesMidBind,
	}
	for name, handle := range faults {
		t.Run(name, func(t *testing.T) {
			addr := ldaptest.FaultServer(t, handle)
			s := newTestServer(t, "--ldap-url", "ldap://"+addr, "--ldap-timeout", "300ms",
				"--ldap-base-dn", "dc=x", "--ldap-bind-dn", "cn=reader,dc=x", "--ldap-bind-password", "pw")
			resp, body := s.passwordGrant(t, "bob", "bob-ldap-pw")
			if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
				t.Errorf("bob: %d %v", resp.StatusCode, body)
			}
			if resp, body := s.passwordGrant(t, "alice", "alice-pw"); resp.StatusCode != 200 {
				t.Errorf("alice: %d %v", resp.StatusCode, body)
			}
			if status, body := s.healthz(t); status != http.StatusServiceUnavailable || !strings.HasPrefix(body["directory"], "unavailable") {
				t.Errorf("healthz: %d %v", status, body)
			}
		})
	}
}
