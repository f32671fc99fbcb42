package admin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/admin"
	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/token"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

const adminToken = "admin-token-0123456789"

// fakeUsers keeps users by id and, like *users.Store, refuses to put a
// name that another id holds. putErr, when set, fails the next Put.
type fakeUsers struct {
	byID   map[int64]users.User
	putErr error
}

func (f *fakeUsers) Lookup(name string) (users.User, bool) {
	for _, u := range f.byID {
		if strings.EqualFold(u.Username, name) {
			return u, true
		}
	}
	return users.User{}, false
}

func (f *fakeUsers) ByID(id int64) (users.User, bool) { u, ok := f.byID[id]; return u, ok }

func (f *fakeUsers) All() []users.User {
	var out []users.User
	for _, u := range f.byID {
		out = append(out, u)
	}
	return out
}

func (f *fakeUsers) Put(u users.User) error {
	if err := f.putErr; err != nil {
		f.putErr = nil
		return err
	}
	if other, ok := f.Lookup(u.Username); ok && other.ID != u.ID {
		return fmt.Errorf("username %q is taken by id %d", u.Username, other.ID)
	}
	f.byID[u.ID] = u
	return nil
}

func (f *fakeUsers) Remove(id int64) bool {
	_, ok := f.byID[id]
	delete(f.byID, id)
	return ok
}

// fakeTokens records the revocations asked of it.
type fakeTokens struct {
	revokedUsers []int64
	revokedAll   int
	list         []token.Info
}

func (f *fakeTokens) RevokeUser(id int64) int {
	f.revokedUsers = append(f.revokedUsers, id)
	return 1
}

func (f *fakeTokens) RevokeAll() int     { f.revokedAll++; return len(f.list) }
func (f *fakeTokens) List() []token.Info { return f.list }

type env struct {
	users  *fakeUsers
	tokens *fakeTokens
	mux    *http.ServeMux
}

// newEnv serves the endpoints over alice (id 1, a local password) and bob
// (id 2, a directory user).
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		users: &fakeUsers{byID: map[int64]users.User{
			1: {ID: 1, Username: "alice", Email: "alice@example.org", PasswordHash: "$2a$04$not-checked-by-the-fake"},
			2: {ID: 2, Username: "bob", Email: "bob@example.org"},
		}},
		tokens: &fakeTokens{},
		mux:    http.NewServeMux(),
	}
	srv, err := admin.New(admin.Config{Token: adminToken, Users: e.users, Tokens: e.tokens, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(e.mux)
	return e
}

// do sends a request with the Authorization header auth ("" for none) and
// decodes the JSON answer into out, when not nil.
func (e *env) do(t *testing.T, method, path, auth, body string, out any) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, rec.Header().Get("Cache-Control"))
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
		}
	}
	return rec
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []admin.Config{
		{Token: "short", Users: &fakeUsers{}, Tokens: &fakeTokens{}},
		{Token: adminToken, Tokens: &fakeTokens{}},
		{Token: adminToken, Users: &fakeUsers{}},
	} {
		if _, err := admin.New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestGuard(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong-token-wrong-token", http.StatusUnauthorized},
		{"Bearer " + adminToken + "x", http.StatusUnauthorized},
		{"Basic " + adminToken, http.StatusUnauthorized},
		{"Bearer" + adminToken, http.StatusUnauthorized},
		{"Bearer " + adminToken, http.StatusOK},
		{"bearer " + adminToken, http.StatusOK},
	} {
		rec := e.do(t, "GET", "/admin/users/", tc.auth, "", nil)
		if rec.Code != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, rec.Code, tc.want)
		}
		if tc.want == http.StatusUnauthorized && (!strings.Contains(rec.Body.String(), `"error":"unauthorized"`) ||
			rec.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("Authorization %q: %s, WWW-Authenticate %q", tc.auth, rec.Body, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestListUsersHidesPasswords(t *testing.T) {
	e := newEnv(t)
	var list []map[string]any
	if rec := e.do(t, "GET", "/admin/users/", "Bearer "+adminToken, "", &list); rec.Code != http.StatusOK || len(list) != 2 {
		t.Fatalf("list users: %d %s", rec.Code, rec.Body)
	}
	for _, u := range list {
		if _, ok := u["password_hash"]; ok {
			t.Errorf("the list shows a password hash: %v", u)
		}
		if want := u["username"] == "bob"; u["is_ldap_user"] != want {
			t.Errorf("%v: is_ldap_user %v, want %v", u["username"], u["is_ldap_user"], want)
		}
	}
}

// TestPutUserRefused: every refusal leaves the users and tokens as they were.
func TestPutUserRefused(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		putErr           error
		status           int
		code             string
	}{
		{"password_hash not bcrypt", "/admin/users/zoe", `{"id": 9, "password_hash": "plain"}`, nil, 400, "invalid_request"},
		{"password over 72 bytes", "/admin/users/zoe", `{"id": 9, "password": "` + strings.Repeat("p", 73) + `"}`, nil, 400, "invalid_request"},
		{"body too large", "/admin/users/zoe", `{"id": 9, "email": "` + strings.Repeat("e", 65<<10) + `"}`, nil, 400, "invalid_request"},
		{"new user without id", "/admin/users/zoe", `{}`, nil, 400, "invalid_request"},
		{"the store refuses", "/admin/users/zoe", `{"id": 9}`, errors.New("store full"), 409, "conflict"},
		{"renumbering the store refuses", "/admin/users/alice", `{"id": 60}`, errors.New("store full"), 409, "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.users.putErr = tc.putErr
			var body map[string]any
			rec := e.do(t, "PUT", tc.path, "Bearer "+adminToken, tc.body, &body)
			if rec.Code != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if _, ok := e.users.ByID(9); ok {
				t.Error("a refused PUT added the user")
			}
			if u, ok := e.users.ByID(1); !ok || u.Username != "alice" {
				t.Errorf("a refused PUT lost alice: %+v", e.users.byID)
			}
			if len(e.tokens.revokedUsers) != 0 {
				t.Errorf("a refused PUT revoked tokens of %v", e.tokens.revokedUsers)
			}
		})
	}
}

// TestPutUserRenumbers: an existing user given a new id keeps the name,
// and the tokens of the old id are revoked.
func TestPutUserRenumbers(t *testing.T) {
	e := newEnv(t)
	var body map[string]any
	if rec := e.do(t, "PUT", "/admin/users/Alice", "Bearer "+adminToken, `{"id": 60, "email": "a@example.org"}`, &body); rec.Code != http.StatusOK {
		t.Fatalf("renumber alice: %d %s", rec.Code, rec.Body)
	}
	if body["id"] != 60.0 || body["username"] != "alice" {
		t.Errorf("answer %v", body)
	}
	if _, ok := e.users.ByID(1); ok {
		t.Error("alice is still under id 1")
	}
	if u, ok := e.users.ByID(60); !ok || u.Username != "alice" || u.Email != "a@example.org" {
		t.Errorf("id 60: %+v, %v", u, ok)
	}
	if len(e.tokens.revokedUsers) != 1 || e.tokens.revokedUsers[0] != 1 {
		t.Errorf("revoked the tokens of %v, want [1]", e.tokens.revokedUsers)
	}

	// An update that keeps the id revokes nothing.
	e.tokens.revokedUsers = nil
	if rec := e.do(t, "PUT", "/admin/users/bob", "Bearer "+adminToken, `{"first_name": "Robert"}`, nil); rec.Code != http.StatusOK {
		t.Fatalf("update bob: %d %s", rec.Code, rec.Body)
	}
	if len(e.tokens.revokedUsers) != 0 {
		t.Errorf("an update revoked the tokens of %v", e.tokens.revokedUsers)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	issued := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e.tokens.list = []token.Info{{
		Access: grant.Access{ClientID: "mezzo", Scope: "read", UserID: 1, Username: "alice",
			IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)},
		Kind: "access_token", GrantType: "password",
	}}
	var list []map[string]any
	if rec := e.do(t, "GET", "/admin/tokens/", "Bearer "+adminToken, "", &list); rec.Code != http.StatusOK || len(list) != 1 {
		t.Fatalf("list tokens: %d %s", rec.Code, rec.Body)
	}
	want := map[string]any{"kind": "access_token", "grant_type": "password", "client_id": "mezzo", "scope": "read",
		"user_id": 1.0, "username": "alice", "issued_at": "2025-03-01T12:00:00Z", "expires_at": "2025-03-01T13:00:00Z"}
	for k, v := range want {
		if list[0][k] != v {
			t.Errorf("%s = %v, want %v", k, list[0][k], v)
		}
	}
	if len(list[0]) != len(want) {
		t.Errorf("token entry %v has fields beyond %v", list[0], want)
	}

	var body map[string]any
	if rec := e.do(t, "POST", "/admin/tokens/revoke-all", "Bearer "+adminToken, "", &body); rec.Code != http.StatusOK || body["tokens_revoked"] != 1.0 || e.tokens.revokedAll != 1 {
		t.Errorf("revoke-all: %d %s, RevokeAll called %d times", rec.Code, rec.Body, e.tokens.revokedAll)
	}
}

func TestDeleteUser(t *testing.T) {
	e := newEnv(t)
	var body map[string]any
	if rec := e.do(t, "DELETE", "/admin/users/BOB", "Bearer "+adminToken, "", &body); rec.Code != http.StatusOK || body["removed"] != "bob" {
		t.Fatalf("delete bob: %d %s", rec.Code, rec.Body)
	}
	if _, ok := e.users.ByID(2); ok || len(e.tokens.revokedUsers) != 1 || e.tokens.revokedUsers[0] != 2 {
		t.Errorf("after delete: bob still there %v, revoked %v", ok, e.tokens.revokedUsers)
	}
	body = nil
	if rec := e.do(t, "DELETE", "/admin/users/bob", "Bearer "+adminToken, "", &body); rec.Code != http.StatusNotFound || body["error"] != "not_found" {
		t.Errorf("delete bob twice: %d %s", rec.Code, rec.Body)
	}
}
