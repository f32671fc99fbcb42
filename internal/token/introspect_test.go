package token_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
)

// issueUserTokens gets alice a token pair for mezzo, scope "read write".
func (e *env) issueUserTokens() reply {
	e.t.Helper()
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read write"})
	return wantTokens(e.t, e.post("/o/token/", exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read write", true)
}

func (e *env) issueRobotToken(scope string) string {
	e.t.Helper()
	r := e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, basic("ci-robot", "ci-robot-secret"))
	return wantTokens(e.t, r, scope, false).str("access_token")
}

func TestIntrospectActive(t *testing.T) {
	e := newEnv(t)
	user := e.issueUserTokens()
	issuedAt := e.clock.Now()
	robot := e.issueRobotToken("read")
	introspector := e.issueRobotToken("introspection")

	for _, tc := range []struct {
		name string
		send func(tok string) reply
	}{
		{"POST, client by Basic", func(tok string) reply {
			return e.post("/o/introspect/", url.Values{"token": {tok}}, basic("ci-robot", "ci-robot-secret"))
		}},
		{"POST, client in body", func(tok string) reply {
			return e.post("/o/introspect/", url.Values{"token": {tok}, "client_id": {"mezzo"}, "client_secret": {"mezzo-secret"}}, noAuth)
		}},
		{"POST, Bearer with scope introspection", func(tok string) reply {
			return e.post("/o/introspect/", url.Values{"token": {tok}}, bearer(introspector))
		}},
		{"GET ?token=, client by Basic", func(tok string) reply {
			return e.send(http.MethodGet, "/o/introspect/?token="+url.QueryEscape(tok), "", "", basic("ci-robot", "ci-robot-secret"))
		}},
		{"GET ?token=, Bearer", func(tok string) reply {
			return e.send(http.MethodGet, "/o/introspect/?token="+url.QueryEscape(tok), "", "", bearer(introspector))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send(user.str("access_token"))
			if r.status != http.StatusOK {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			want := map[string]any{
				"active": true, "scope": "read write", "client_id": "mezzo", "username": "alice",
				"token_type": "Bearer", "sub": "1",
				"iat": float64(issuedAt.Unix()), "exp": float64(issuedAt.Add(36000 * time.Second).Unix()),
			}
			checkFields(t, r.body, want)

			r = tc.send(robot)
			checkFields(t, r.body, map[string]any{"active": true, "scope": "read", "client_id": "ci-robot", "token_type": "Bearer"})
			if _, ok := r.body["username"]; ok {
				t.Errorf("client_credentials token has a username: %s", r.raw)
			}
			if _, ok := r.body["sub"]; ok {
				t.Errorf("client_credentials token has a sub: %s", r.raw)
			}
		})
	}

	t.Run("refresh token", func(t *testing.T) {
		for _, hint := range []string{"", "refresh_token", "access_token"} {
			r := e.post("/o/introspect/", url.Values{"token": {user.str("refresh_token")}, "token_type_hint": {hint}}, basic("ci-robot", "ci-robot-secret"))
			checkFields(t, r.body, map[string]any{"active": true, "scope": "read write", "client_id": "mezzo", "username": "alice", "sub": "1"})
		}
	})
}

func checkFields(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (answer %v)", k, got[k], v, got)
		}
	}
}

func TestIntrospectInactive(t *testing.T) {
	e := newEnv(t)
	revoked := e.issueUserTokens()
	if r := e.post("/o/revoke_token/", url.Values{"token": {revoked.str("refresh_token")}}, basic("mezzo", "mezzo-secret")); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	expiring := e.issueRobotToken("read")
	e.clock.Advance(36001 * time.Second)

	for _, tc := range []struct{ name, token string }{
		{"unknown", "no-such-token"},
		{"revoked access token", revoked.str("access_token")},
		{"revoked refresh token", revoked.str("refresh_token")},
		{"expired", expiring},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/o/introspect/", url.Values{"token": {tc.token}}, basic("ci-robot", "ci-robot-secret"))
			if r.status != http.StatusOK || len(r.body) != 1 || r.body["active"] != false {
				t.Errorf("got %d %s, want 200 {\"active\":false}", r.status, r.raw)
			}
		})
	}
}

func TestIntrospectRefused(t *testing.T) {
	e := newEnv(t)
	user := e.issueUserTokens()
	withoutScope := e.issueRobotToken("read")
	form := url.Values{"token": {user.str("access_token")}}
	for _, tc := range []struct {
		name   string
		send   func() reply
		status int
		code   string
		auth   string // expected WWW-Authenticate prefix; "" for none
	}{
		{"unauthenticated POST", func() reply { return e.post("/o/introspect/", form, noAuth) }, 401, "invalid_client", "Basic"},
		{"unauthenticated GET", func() reply {
			return e.send(http.MethodGet, "/o/introspect/?token="+user.str("access_token"), "", "", noAuth)
		}, 401, "invalid_client", "Basic"},
		{"wrong client secret", func() reply { return e.post("/o/introspect/", form, basic("ci-robot", "nope")) }, 401, "invalid_client", "Basic"},
		{"unknown Bearer", func() reply { return e.post("/o/introspect/", form, bearer("nope")) }, 401, "invalid_token", "Bearer"},
		{"Bearer without scope introspection", func() reply { return e.post("/o/introspect/", form, bearer(withoutScope)) }, 403, "insufficient_scope", "Bearer"},
		{"missing token", func() reply { return e.post("/o/introspect/", url.Values{}, basic("ci-robot", "ci-robot-secret")) }, 400, "invalid_request", ""},
		{"secret in the query", func() reply {
			return e.send(http.MethodGet, "/o/introspect/?token=x&client_id=ci-robot&client_secret=ci-robot-secret", "", "", noAuth)
		}, 400, "invalid_request", ""},
		{"repeated token", func() reply {
			return e.send(http.MethodPost, "/o/introspect/", "application/x-www-form-urlencoded", "token=a&token=b", basic("ci-robot", "ci-robot-secret"))
		}, 400, "invalid_request", ""},
		{"DELETE", func() reply {
			return e.send(http.MethodDelete, "/o/introspect/", "", "", basic("ci-robot", "ci-robot-secret"))
		}, 405, "invalid_request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			if r.status != tc.status || r.str("error") != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.auth) || tc.auth == "" && got != "" {
				t.Errorf("WWW-Authenticate %q, want %q…", got, tc.auth)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	mezzo := basic("mezzo", "mezzo-secret")
	refresh := func(e *env, rt string) reply {
		return e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, mezzo)
	}
	wantOK := func(t *testing.T, r reply) {
		t.Helper()
		if r.status != http.StatusOK || len(r.body) != 0 {
			t.Fatalf("revoke: got %d %s, want 200 {}", r.status, r.raw)
		}
	}

	t.Run("access token", func(t *testing.T) {
		e := newEnv(t)
		u := e.issueUserTokens()
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("access_token")}, "token_type_hint": {"access_token"}}, mezzo))
		if e.active(u.str("access_token")) {
			t.Error("revoked access token still active")
		}
	})
	t.Run("refresh token revokes its access token", func(t *testing.T) {
		e := newEnv(t)
		u := e.issueUserTokens()
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("refresh_token")}, "client_id": {"mezzo"}, "client_secret": {"mezzo-secret"}}, noAuth))
		if e.active(u.str("access_token")) {
			t.Error("access token of a revoked refresh token still active")
		}
		wantError(t, refresh(e, u.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("wrong hint is only a hint", func(t *testing.T) {
		e := newEnv(t)
		u := e.issueUserTokens()
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("refresh_token")}, "token_type_hint": {"access_token"}}, mezzo))
		wantError(t, refresh(e, u.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("unknown token", func(t *testing.T) {
		e := newEnv(t)
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {"no-such-token"}}, mezzo))
	})
	t.Run("token of another client is not revoked", func(t *testing.T) {
		e := newEnv(t)
		u := e.issueUserTokens()
		other := basic("other", "other-secret")
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("access_token")}}, other))
		wantOK(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("refresh_token")}}, other))
		if !e.active(u.str("access_token")) {
			t.Error("another client revoked mezzo's access token")
		}
		wantTokens(t, refresh(e, u.str("refresh_token")), "read write", true)
	})
	t.Run("refused", func(t *testing.T) {
		e := newEnv(t)
		u := e.issueUserTokens()
		wantError(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("access_token")}}, noAuth), http.StatusUnauthorized, "invalid_client")
		wantError(t, e.post("/o/revoke_token/", url.Values{"token": {u.str("access_token")}}, basic("mezzo", "wrong")), http.StatusUnauthorized, "invalid_client")
		wantError(t, e.post("/o/revoke_token/", url.Values{}, mezzo), http.StatusBadRequest, "invalid_request")
		wantError(t, e.send(http.MethodGet, "/o/revoke_token/?token="+u.str("access_token"), "", "", mezzo), http.StatusMethodNotAllowed, "invalid_request")
		if !e.active(u.str("access_token")) {
			t.Error("a refused revocation revoked the token")
		}
	})
}
