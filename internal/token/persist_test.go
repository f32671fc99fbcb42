package token_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/token"
)

// TestStoreStaysBoundedUnderSustainedFlow: hours of codes, exchanges and
// client_credentials tokens keep the store at what one lifetime issues,
// and once everything expired one write sweeps it all out.
func TestStoreStaysBoundedUnderSustainedFlow(t *testing.T) {
	e := newEnv(t)
	const perRound = 60
	for round := range 12 {
		for i := range perRound {
			c := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
			if i%2 == 0 {
				wantTokens(t, e.post("/o/token/", exchangeForm(c, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
			}
			wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("ci-robot", "ci-robot-secret")), "read", false)
		}
		codes, tokens := token.StoreSize(e.svc)
		// Codes live 60 s: only this round's are left. Access tokens live
		// 10 h, refresh tokens 30 days: at most 10 rounds of access tokens.
		if codes > perRound {
			t.Fatalf("round %d: %d codes in the store, want at most %d", round, codes, perRound)
		}
		if maxTokens := perRound/2*(round+1) + min(round+1, 10)*(perRound+perRound/2); tokens > maxTokens {
			t.Fatalf("round %d: %d tokens in the store, want at most %d", round, tokens, maxTokens)
		}
		e.clock.Advance(time.Hour)
	}
	if codes, tokens := token.StoreSize(e.svc); codes == 0 || tokens < 12*perRound {
		t.Fatalf("before expiry: %d codes, %d tokens; the test issued too little", codes, tokens)
	}

	// Once everything has expired, the next write sweeps it all.
	e.clock.Advance(token.DefaultRefreshTokenTTL)
	e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})
	if codes, tokens := token.StoreSize(e.svc); codes != 1 || tokens != 0 {
		t.Errorf("after expiry and a write: %d codes, %d tokens; want 1, 0", codes, tokens)
	}
}

// newFileEnv is newEnv with the tokens kept in path, on the clock clk.
func newFileEnv(t *testing.T, path string, clk *testkit.Clock) (*env, error) {
	t.Helper()
	return startEnv(t, clk, nil, path)
}

func mustFileEnv(t *testing.T, path string, clk *testkit.Clock) *env {
	t.Helper()
	e, err := newFileEnv(t, path, clk)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// restart closes e and starts a service on the same file and clock.
func (e *env) restart(t *testing.T, path string) *env {
	t.Helper()
	e.srv.Close()
	if err := e.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustFileEnv(t, path, e.clock)
}

// TestTokenFileSurvivesRestart: tokens, refresh tokens, unexchanged
// codes, used codes (replay detection) and revocations are all kept.
func TestTokenFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	e := mustFileEnv(t, path, newClock())

	exchanged := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	user := wantTokens(t, e.post("/o/token/", exchangeForm(exchanged, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
	pending := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	robot := e.issueRobotToken("read introspection")
	revoked := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {bobLDAPPW}},
		basic("mezzo", "mezzo-secret")), "read", true)
	if r := e.post("/o/revoke_token/", url.Values{"token": {revoked.str("refresh_token")}}, basic("mezzo", "mezzo-secret")); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}

	e = e.restart(t, path)
	if !e.active(user.str("access_token")) || !e.active(robot) {
		t.Fatal("tokens issued before the restart are not valid after it")
	}
	if e.active(revoked.str("access_token")) {
		t.Error("a token revoked before the restart is valid after it")
	}
	r := e.post("/o/introspect/", url.Values{"token": {user.str("access_token")}}, bearer(robot))
	if r.status != 200 || r.body["active"] != true || r.str("username") != "alice" || r.str("client_id") != "mezzo" {
		t.Errorf("introspection after restart: %d %s", r.status, r.raw)
	}
	wantTokens(t, e.post("/o/token/", exchangeForm(pending, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)

	// The refresh token rotates; the new pair survives another restart.
	ref := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {user.str("refresh_token")}},
		basic("mezzo", "mezzo-secret")), "read", true)
	if e.active(user.str("access_token")) {
		t.Error("the rotated-out access token is still valid")
	}
	e = e.restart(t, path)
	if !e.active(ref.str("access_token")) {
		t.Error("the refreshed access token is lost at the restart")
	}
	// A replay of the code exchanged before the first restart is still
	// recognised, and revokes every token issued from it.
	wantError(t, e.post("/o/token/", exchangeForm(exchanged, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), 400, "invalid_grant")
	if e.active(ref.str("access_token")) {
		t.Error("a replayed code did not revoke its tokens after a restart")
	}
	if !e.active(robot) {
		t.Error("the replay revoked an unrelated token")
	}
}

// The file holds hashes, readable by its owner only; no code or token.
func TestTokenFileHoldsNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	e := mustFileEnv(t, path, newClock())
	c := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	pending := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	tok := wantTokens(t, e.post("/o/token/", exchangeForm(c, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"code": c, "pending code": pending,
		"access token": tok.str("access_token"), "refresh token": tok.str("refresh_token")} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the file holds the %s", name)
		}
		if b, _ := decodeB64(secret); b != nil && strings.Contains(string(raw), hex.EncodeToString(b)) {
			t.Errorf("the file holds the %s, hex-encoded", name)
		}
	}
	if !strings.Contains(string(raw), `"sha256"`) {
		t.Errorf("no hashes in the file:\n%s", raw)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Without Close, the file follows the changes within moments.
func TestTokenFileSavedWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	e := mustFileEnv(t, path, newClock())
	robot := e.issueRobotToken("read")
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw, _ := os.ReadFile(path)
		if strings.Contains(string(raw), `"client_credentials"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file does not hold the token 5 s after it was issued:\n%s", raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A second service reading the file now (as after a crash) knows it.
	e2 := mustFileEnv(t, path, e.clock)
	if !e2.active(robot) {
		t.Error("the token saved without Close is not valid")
	}
}

// Entries that expired while the server was stopped are not loaded.
func TestTokenFileDropsExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	e := mustFileEnv(t, path, newClock())
	e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})
	robot := e.issueRobotToken("read")
	e.srv.Close()
	e.svc.Close()
	e.clock.Advance(token.DefaultAccessTokenTTL)
	e = mustFileEnv(t, path, e.clock)
	if codes, tokens := token.StoreSize(e.svc); codes != 0 || tokens != 0 || e.active(robot) {
		t.Errorf("after expiry: %d codes, %d tokens loaded; want none", codes, tokens)
	}
}

// A file that cannot be read, parsed or written stops the start with an
// error naming it.
func TestTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"not JSON", write("garbage.json", "tokens: yes\n"), "is not a token file"},
		{"truncated", write("truncated.json", `{"version": 1, "tokens": [{"sha256": "ab`), "is not a token file"},
		{"other version", write("v2.json", `{"version": 2}`), "is not a token file"},
		{"unknown field", write("unknown.json", `{"version": 1, "secret": "x"}`), "is not a token file"},
		{"bad hash", write("badhash.json", `{"version": 1, "tokens": [{"sha256": "zz", "kind": "access_token"}]}`), "is not a token file"},
		{"bad kind", write("badkind.json", `{"version": 1, "tokens": [{"sha256": "`+strings.Repeat("ab", 32)+`", "kind": "x"}]}`), "is not a token file"},
		{"a directory", dir, "cannot be read"},
		{"no such directory", filepath.Join(dir, "missing", "tokens.json"), "cannot be written"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newFileEnv(t, tc.path, newClock())
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want the file name and %q", err, tc.want)
			}
		})
	}
	// An empty file (touch tokens.json) is an empty store.
	if _, err := newFileEnv(t, write("empty.json", ""), newClock()); err != nil {
		t.Errorf("empty file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing directory was created: %v", err)
	}
}

// LookupAccess of a token never seen, with a file, is still invalid.
func TestTokenFileUnknownToken(t *testing.T) {
	e := mustFileEnv(t, filepath.Join(t.TempDir(), "tokens.json"), newClock())
	if _, err := e.svc.LookupAccess(context.Background(), "nope"); !errors.Is(err, grant.ErrInvalidToken) {
		t.Errorf("LookupAccess: %v", err)
	}
}

func decodeB64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
