package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// introspect asks /o/introspect/ about tok as the ci-robot client.
func introspect(t *testing.T, server, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, server+"/o/introspect/", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ci-robot", "ci-robot-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return body
}

// With --token-file, a restart of the server loses no token: the access
// token still reads the profile and introspects as active, and the
// refresh token still refreshes.
func TestTokenFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	type issued struct {
		user string
		id   float64
		tok  *oauth2.Token
	}
	var toks []issued

	s := newTestServer(t, "--token-file", path)
	for _, u := range []struct {
		name, password string
		id             float64
	}{{"alice", "alice-pw", 1}, {"bob", "bob-ldap-pw", 2}} {
		conf := s.mezzo()
		verifier := oauth2.GenerateVerifier()
		code, _ := newBrowser(t, s.URL).login(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), u.name, u.password)
		tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, issued{u.name, u.id, tok})
	}
	s.Close()
	if err := s.app.tokens.Close(); err != nil {
		t.Fatal(err)
	}
	s.app.Close()

	s = newTestServer(t, "--token-file", path)
	for _, it := range toks {
		p := profileOf(t, s.URL, it.tok)
		if p["username"] != it.user || p["id"] != it.id {
			t.Errorf("profile after restart: %v, want %s", p, it.user)
		}
		if in := introspect(t, s.URL, it.tok.AccessToken); in["active"] != true || in["username"] != it.user {
			t.Errorf("introspection after restart: %v", in)
		}
		// Refresh: an expired oauth2.Token makes the client use the
		// refresh token.
		stale := *it.tok
		stale.Expiry = stale.Expiry.AddDate(-1, 0, 0)
		fresh, err := s.mezzo().TokenSource(context.Background(), &stale).Token()
		if err != nil {
			t.Fatalf("refresh after restart: %v", err)
		}
		if fresh.AccessToken == it.tok.AccessToken || fresh.RefreshToken == it.tok.RefreshToken {
			t.Error("the refresh did not rotate the tokens")
		}
		if p := profileOf(t, s.URL, fresh); p["username"] != it.user {
			t.Errorf("profile with the refreshed token: %v", p)
		}
	}
}

// IRCAM_AUTH_TOKEN_FILE is the flag's twin, and a corrupt file stops the
// start with an error naming it.
func TestTokenFileConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	cfg, err := parseConfig(nil, env(map[string]string{"IRCAM_AUTH_TOKEN_FILE": path}), io.Discard)
	if err != nil || cfg.TokenFile != path {
		t.Fatalf("IRCAM_AUTH_TOKEN_FILE: %q, %v", cfg.TokenFile, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = parseConfig([]string{"--ldap-listen", freeAddr(t), "--bcrypt-cost", "4", "--token-file", path}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("a corrupt token file did not stop the start")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}
