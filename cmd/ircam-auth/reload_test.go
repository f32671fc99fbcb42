package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	defaultfixtures "github.com/ircam/ircam-auth/fixtures"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// writeFixtures writes the default fixtures with edit applied.
func writeFixtures(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(edit(string(defaultfixtures.Default))), 0o600); err != nil {
		t.Fatal(err)
	}
}

const daveFixture = `users:
  - id: 4
    username: dave
    password: dave-pw
    email: dave@example.org
`

func addDave(s string) string { return strings.Replace(s, "users:\n", daveFixture, 1) }

func passwordToken(t *testing.T, s *testServer, user, pw string) (*oauth2.Token, error) {
	t.Helper()
	return s.mezzo().PasswordCredentialsToken(context.Background(), user, pw)
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fixtures.yaml")
	writeFixtures(t, path, func(s string) string { return s })
	s := newTestServer(t, "--fixtures", path)

	aliceTok, err := passwordToken(t, s, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	bobTok, err := passwordToken(t, s, "bob", "bob-ldap-pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passwordToken(t, s, "dave", "dave-pw"); err == nil {
		t.Fatal("dave logged in before he was added")
	}

	// A bad file is refused; the fixtures in force stay.
	writeFixtures(t, path, func(s string) string { return s + "\nbogus: 1\n" })
	if err := s.app.reload(context.Background()); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad fixtures: %v", err)
	}
	if p := profileOf(t, s.URL, aliceTok); p["username"] != "alice" {
		t.Errorf("alice's token after a refused reload: %v", p)
	}

	// Add dave, remove bob, change carol's directory password.
	writeFixtures(t, path, func(s string) string {
		s = addDave(s)
		s = strings.Replace(s, "  - id: 2\n    username: bob\n    email: bob@example.org\n    first_name: Bob\n    last_name: Moog\n", "", 1)
		return strings.Replace(s, "carol-ldap-pw", "carol-new-pw", 1)
	})
	if err := s.app.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := passwordToken(t, s, "dave", "dave-pw"); err != nil {
		t.Errorf("dave after the reload: %v", err)
	}
	if p := profileOf(t, s.URL, aliceTok); p["username"] != "alice" {
		t.Errorf("alice's token did not survive the reload: %v", p)
	}
	if code := profileStatus(t, s.URL, bobTok); code != http.StatusUnauthorized {
		t.Errorf("bob was removed from the fixtures; his token answers %d", code)
	}
	if _, err := passwordToken(t, s, "carol", "carol-new-pw"); err != nil {
		t.Errorf("carol with her new directory password: %v", err)
	}
	if _, err := passwordToken(t, s, "carol", "carol-ldap-pw"); err == nil {
		t.Error("carol's old directory password still works")
	}

	// Remove the ci-robot client: its tokens go with it.
	robot := &clientcredentials.Config{ClientID: "ci-robot", ClientSecret: "ci-robot-secret", TokenURL: s.URL + "/o/token/", Scopes: []string{"introspection"}}
	robotTok, err := robot.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writeFixtures(t, path, func(s string) string {
		return strings.Replace(s, "  - client_id: ci-robot\n    client_secret: ci-robot-secret\n", "  - client_id: ci-robot-2\n    client_secret: ci-robot-secret\n", 1)
	})
	if err := s.app.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/o/introspect/", strings.NewReader(url.Values{"token": {aliceTok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+robotTok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a removed client's token still introspects: %d", resp.StatusCode)
	}
	// alice's token, of a client that stayed, is still valid.
	if p := profileOf(t, s.URL, aliceTok); p["username"] != "alice" {
		t.Errorf("alice's token after the client reload: %v", p)
	}
}

func profileStatus(t *testing.T, server string, tok *oauth2.Token) int {
	t.Helper()
	resp := getProfile(t, server, tok)
	resp.Body.Close()
	return resp.StatusCode
}

// A real SIGHUP to the process reloads the fixtures of a running run().
func TestSIGHUPReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fixtures.yaml")
	writeFixtures(t, path, func(s string) string { return s })
	s := startRun(t, testArgs(t, "--fixtures", path), nil)
	writeFixtures(t, path, addDave)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "fixtures reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conf := &oauth2.Config{ClientID: "mezzo", ClientSecret: "mezzo-secret",
		Endpoint: oauth2.Endpoint{TokenURL: s.base + "/o/token/", AuthStyle: oauth2.AuthStyleInParams}}
	if _, err := conf.PasswordCredentialsToken(context.Background(), "dave", "dave-pw"); err != nil {
		t.Errorf("dave after SIGHUP: %v", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	const admin = "test-admin-token-0123456789"
	s := newTestServer(t, "--admin-token", admin)
	do := func(method, path, token, body string) (int, map[string]any, []any) {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
		}
		var obj map[string]any
		var list []any
		if json.Unmarshal(raw, &obj) != nil {
			json.Unmarshal(raw, &list)
		}
		return resp.StatusCode, obj, list
	}

	if code, _, _ := do("GET", "/admin/users/", "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _, _ := do("GET", "/admin/users/", "wrong-token-wrong-token", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}

	// Add erin with a password; she can log in.
	code, body, _ := do("PUT", "/admin/users/erin", admin, `{"id": 50, "email": "erin@example.org", "password": "erin-pw"}`)
	if code != http.StatusCreated || body["is_ldap_user"] != false || body["password"] != nil {
		t.Fatalf("add erin: %d %v", code, body)
	}
	tok, err := passwordToken(t, s, "erin", "erin-pw")
	if err != nil {
		t.Fatal(err)
	}
	if p := profileOf(t, s.URL, tok); p["id"] != 50.0 || p["email"] != "erin@example.org" {
		t.Errorf("erin's profile: %v", p)
	}
	// Bad requests change nothing.
	for _, bad := range []string{`{"id": 51, "username": "other"}`, `{"id": -1}`, `{"password": "a", "password_hash": "b"}`, `{"nope": 1}`, `not json`} {
		if code, body, _ := do("PUT", "/admin/users/zoe", admin, bad); code != http.StatusBadRequest || body["error"] == nil {
			t.Errorf("PUT %s: %d %v", bad, code, body)
		}
	}
	// ALICE is alice (case-insensitively): an update that keeps her id
	// and the spelling of her name.
	if code, body, _ := do("PUT", "/admin/users/ALICE", admin, `{"first_name": "Alicia", "password": "new-alice-pw"}`); code != http.StatusOK || body["id"] != 1.0 || body["username"] != "alice" {
		t.Errorf("update ALICE: %d %v", code, body)
	}
	if code, _, _ := do("PUT", "/admin/users/frank", admin, `{"id": 1}`); code != http.StatusConflict {
		t.Errorf("frank with alice's id: %d, want 409", code)
	}
	if code, _, _ := do("PUT", "/admin/users/alice", admin, `{"id": 50}`); code != http.StatusConflict {
		t.Errorf("alice with erin's id: %d, want 409", code)
	}

	// List the tokens: erin's is there, without the token itself.
	code, _, list := do("GET", "/admin/tokens/", admin, "")
	if code != 200 || len(list) == 0 {
		t.Fatalf("list tokens: %d %v", code, list)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), tok.AccessToken) || strings.Contains(string(raw), tok.RefreshToken) {
		t.Error("the token list shows a token")
	}
	if !strings.Contains(string(raw), `"username":"erin"`) {
		t.Errorf("erin's token is not listed: %s", raw)
	}

	// Remove erin: her tokens stop working.
	if code, body, _ := do("DELETE", "/admin/users/erin", admin, ""); code != 200 || body["tokens_revoked"].(float64) < 1 {
		t.Errorf("remove erin: %d %v", code, body)
	}
	if code := profileStatus(t, s.URL, tok); code != http.StatusUnauthorized {
		t.Errorf("erin's token after her removal: %d", code)
	}
	if code, _, _ := do("DELETE", "/admin/users/erin", admin, ""); code != http.StatusNotFound {
		t.Errorf("remove erin twice: %d", code)
	}

	// Revoke all.
	aliceTok, err := passwordToken(t, s, "alice", "new-alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := do("POST", "/admin/tokens/revoke-all", admin, ""); code != 200 || body["tokens_revoked"].(float64) < 1 {
		t.Errorf("revoke all: %d %v", code, body)
	}
	if code := profileStatus(t, s.URL, aliceTok); code != http.StatusUnauthorized {
		t.Errorf("alice's token after revoke-all: %d", code)
	}
}

func TestAdminEndpointsOffByDefault(t *testing.T) {
	s := newTestServer(t)
	if status := getStatus(t, s.URL+"/admin/users/"); status != http.StatusNotFound {
		t.Errorf("/admin/users/ without --admin-token: %d", status)
	}
}
