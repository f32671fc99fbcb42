package profile_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/profile"
	"github.com/ircam/ircam-auth/internal/testkit"
	"github.com/ircam/ircam-auth/internal/token"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

// hidingUsers is the user store with some users deleted.
type hidingUsers struct {
	*users.Store
	mu     sync.Mutex
	hidden map[int64]bool
}

func (h *hidingUsers) ByID(id int64) (users.User, bool) {
	h.mu.Lock()
	gone := h.hidden[id]
	h.mu.Unlock()
	if gone {
		return users.User{}, false
	}
	return h.Store.ByID(id)
}

func (h *hidingUsers) delete(id int64) {
	h.mu.Lock()
	h.hidden[id] = true
	h.mu.Unlock()
}

type env struct {
	t     *testing.T
	svc   *token.Service
	users *hidingUsers
	clock *testkit.Clock
	srv   *httptest.Server
}

// newEnv serves the token endpoints and /profile/ over HTTP, with real
// users, clients and tokens.
func newEnv(t *testing.T) *env {
	t.Helper()
	seed := append(testkit.AliceAndBob(t, "alice-pw"),
		fixtures.User{ID: 1 << 45, Username: "carol", Email: "carol@example.org", Avatar: "https://example.org/carol.png"})
	store, err := users.NewStore(seed, nil, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	us := &hidingUsers{Store: store, hidden: map[int64]bool{}}
	clk := testkit.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	svc, err := token.New(token.Config{
		Clients: clients.NewRegistry([]fixtures.Client{
			{ClientID: "mezzo", ClientSecret: "mezzo-secret", Name: "Mezzo",
				RedirectURIs: []string{"https://mezzo.example.org/cb"}, Scopes: []string{"read", "write"}},
			{ClientID: "ci-robot", ClientSecret: "ci-robot-secret", Name: "CI robot",
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "introspection"}},
		}),
		Users: us,
		Now:   clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	mux.Handle("/profile/", profile.New(svc, us, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, users: us, clock: clk, srv: srv}
}

// postToken posts a token request and returns the access token.
func (e *env) postToken(form url.Values, id, secret string) string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/o/token/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		e.t.Fatalf("token request: %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// userToken returns an access token of the user for mezzo.
func (e *env) userToken(userID int64, username, scope string) string {
	e.t.Helper()
	code, err := e.svc.IssueCode(context.Background(), grant.CodeRequest{
		ClientID: "mezzo", Scope: scope, UserID: userID, Username: username,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.postToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}}, "mezzo", "mezzo-secret")
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// get fetches /profile/ with the Authorization header auth ("" for none)
// and checks that the answer is JSON and not cacheable.
func get(t *testing.T, base, auth string) reply {
	t.Helper()
	return do(t, http.MethodGet, base, auth)
}

func do(t *testing.T, method, base, auth string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, base+"/profile/", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", raw, err)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	return r
}

func TestProfile(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		userID int64
		user   string
		auth   func(tok string) string
		want   string
	}{
		{"local user", 1, "alice", func(tok string) string { return "Bearer " + tok },
			`{"id":1,"ext_id":1,"username":"alice","email":"alice@example.org","first_name":"Alice","last_name":"Liddell","avatar":"","is_ldap_user":false}`},
		{"directory user", 2, "bob", func(tok string) string { return "Bearer " + tok },
			`{"id":2,"ext_id":2,"username":"bob","email":"bob@example.org","first_name":"Bob","last_name":"Moog","avatar":"","is_ldap_user":true}`},
		{"large id, lower-case scheme", 1 << 45, "carol", func(tok string) string { return "bearer " + tok },
			`{"id":35184372088832,"ext_id":35184372088832,"username":"carol","email":"carol@example.org","first_name":"","last_name":"","avatar":"https://example.org/carol.png","is_ldap_user":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, e.srv.URL, tc.auth(e.userToken(tc.userID, tc.user, "read")))
			if r.status != http.StatusOK {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if got := strings.TrimSpace(r.raw); got != tc.want {
				t.Errorf("profile\n got %s\nwant %s", got, tc.want)
			}
			// The types the django-allauth provider relies on.
			if _, ok := r.body["id"].(float64); !ok {
				t.Errorf("id is %T, want a JSON number", r.body["id"])
			}
			if r.body["id"] != r.body["ext_id"] {
				t.Errorf("ext_id %v != id %v", r.body["ext_id"], r.body["id"])
			}
			if _, ok := r.body["is_ldap_user"].(bool); !ok {
				t.Errorf("is_ldap_user is %T, want a JSON boolean", r.body["is_ldap_user"])
			}
			if len(r.body) != 8 {
				t.Errorf("profile has %d fields, want 8", len(r.body))
			}
		})
	}
}

func TestProfileRefused(t *testing.T) {
	e := newEnv(t)
	expired := e.userToken(1, "alice", "read")
	e.clock.Advance(36001 * time.Second)

	revoked := e.userToken(1, "alice", "read")
	if e.svc.RevokeUser(1) == 0 {
		t.Fatal("RevokeUser revoked nothing")
	}
	noRead := e.userToken(1, "alice", "write")
	robot := e.postToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, "ci-robot", "ci-robot-secret")
	deleted := e.userToken(2, "bob", "read")
	e.users.delete(2)

	for _, tc := range []struct {
		name     string
		auth     string
		status   int
		code     string
		wwwAuthn string // substring of WWW-Authenticate; "" for none expected
	}{
		{"missing", "", 401, "invalid_token", `error="invalid_token"`},
		{"empty bearer", "Bearer ", 401, "invalid_token", `error="invalid_token"`},
		{"basic instead of bearer", "Basic YTpi", 401, "invalid_token", `Bearer realm="ircam-auth"`},
		{"unknown", "Bearer no-such-token", 401, "invalid_token", `Bearer realm="ircam-auth", error="invalid_token"`},
		{"expired", "Bearer " + expired, 401, "invalid_token", `error="invalid_token"`},
		{"revoked", "Bearer " + revoked, 401, "invalid_token", `error="invalid_token"`},
		{"user deleted since", "Bearer " + deleted, 401, "invalid_token", `error="invalid_token"`},
		{"without scope read", "Bearer " + noRead, 403, "insufficient_scope", `error="insufficient_scope", scope="read"`},
		{"client_credentials token", "Bearer " + robot, 403, "access_denied", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, e.srv.URL, tc.auth)
			if r.status != tc.status || r.body["error"] != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if d, _ := r.body["error_description"].(string); d == "" {
				t.Error("no error_description")
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tc.wwwAuthn) || tc.wwwAuthn == "" && got != "" {
				t.Errorf("WWW-Authenticate %q, want it to contain %q", got, tc.wwwAuthn)
			}
		})
	}
	if d, _ := get(t, e.srv.URL, "Bearer "+robot).body["error_description"].(string); !strings.Contains(d, "client_credentials") {
		t.Errorf("client_credentials refusal does not say why: %q", d)
	}
}

func TestProfileMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := do(t, http.MethodPost, e.srv.URL, "Bearer "+e.userToken(1, "alice", "read"))
	if r.status != http.StatusMethodNotAllowed || r.body["error"] == nil {
		t.Errorf("POST /profile/: %d %s", r.status, r.raw)
	}
}

// failingTokens is a token checker that is broken, not refusing.
type failingTokens struct{}

func (failingTokens) LookupAccess(context.Context, string) (grant.Access, error) {
	return grant.Access{}, errors.New("store on fire")
}

func TestProfileLookupFailure(t *testing.T) {
	srv := httptest.NewServer(profile.New(failingTokens{}, &users.Store{}, nil))
	defer srv.Close()
	r := get(t, srv.URL, "Bearer x")
	if r.status != http.StatusInternalServerError || r.body["error"] != "server_error" {
		t.Errorf("got %d %s, want 500 server_error", r.status, r.raw)
	}
}
