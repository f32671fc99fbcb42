package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Every kind of request, with the logs captured in JSON: one line per
// request with its client and user, the login method, and never a
// password, secret, code or token.
func TestLogsNameTheRequestAndHideSecrets(t *testing.T) {
	const adminToken = "admin-token-for-the-log-test"
	s := newTestServerLogging(t, func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }, "--admin-token", adminToken)

	secrets := []string{"alice-pw", "bob-ldap-pw", "mezzo-secret", "ircam-auth-search-pw", adminToken, "wrong-pw-XYZ"}

	// A failed and a successful form login, then the code exchange.
	b := newBrowser(t, s.URL)
	resp, page := b.get(s.mezzo().AuthCodeURL("st"))
	b.post(resp.Request.URL.String(), parseForm(t, page), map[string]string{"username": "bob", "password": "wrong-pw-XYZ"})
	code, _ := b.login(s.mezzo().AuthCodeURL("st"), "bob", "bob-ldap-pw")
	secrets = append(secrets, code)
	tok, err := s.mezzo().Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	// Replay the code: refused, and logged as a replay.
	s.mezzo().Exchange(context.Background(), code)
	tok2, err := s.mezzo().PasswordCredentialsToken(context.Background(), "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, tok2.AccessToken, tok2.RefreshToken)
	profileOf(t, s.URL, tok2)
	refreshed, err := s.mezzo().TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, refreshed.AccessToken, refreshed.RefreshToken)
	for _, form := range []url.Values{
		{"token": {refreshed.AccessToken}, "client_id": {"mezzo"}, "client_secret": {"mezzo-secret"}},
	} {
		for _, path := range []string{"/o/introspect/", "/o/revoke_token/"} {
			r, err := http.PostForm(s.URL+path, form)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
		}
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/admin/tokens/", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if r, err := http.DefaultClient.Do(req); err == nil {
		r.Body.Close()
	}

	// The tokens of the code flow, which were revoked by the replay.
	secrets = append(secrets, tok.AccessToken, tok.RefreshToken)

	out := s.logs.String()
	for _, secret := range secrets {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("the log holds a secret %q", secret)
		}
	}

	var sawLDAPLogin, sawFailedLogin, sawTokenRequest, sawReplay bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not a JSON log line: %s", sc.Text())
		}
		switch {
		case rec["msg"] == "login" && rec["method"] == "ldap" && rec["user"] == "bob":
			sawLDAPLogin = true
		case rec["msg"] == "login failed" && rec["user"] == "bob" && rec["reason"] != nil:
			sawFailedLogin = true
		case rec["msg"] == "request" && rec["path"] == "/o/token/" && rec["client_id"] == "mezzo" && rec["user"] == "alice" &&
			rec["status"] == 200.0 && rec["method"] == "POST" && rec["duration"] != nil:
			sawTokenRequest = true
		case rec["replay"] == true:
			sawReplay = true
		}
	}
	for what, saw := range map[string]bool{"an LDAP login of bob": sawLDAPLogin, "a failed login with its reason": sawFailedLogin,
		"a request line of the token endpoint with client and user": sawTokenRequest, "a code replay": sawReplay} {
		if !saw {
			t.Errorf("no log line for %s:\n%s", what, out)
		}
	}
}
