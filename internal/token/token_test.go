package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestAllauthExchange posts the form django-allauth posts: client
// credentials in the body, no PKCE.
func TestAllauthExchange(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	r := wantTokens(t, e.post("/o/token/", exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)

	a, err := e.svc.LookupAccess(context.Background(), r.str("access_token"))
	if err != nil {
		t.Fatalf("LookupAccess of the issued token: %v", err)
	}
	if a.ClientID != "mezzo" || a.UserID != 1 || a.Username != "alice" || a.Scope != "read" {
		t.Errorf("LookupAccess = %+v", a)
	}
	if want := e.clock.Now().Add(36000 * time.Second); !a.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want %v", a.ExpiresAt, want)
	}
}

// TestExchangeBasic uses golang.org/x/oauth2 with HTTP Basic and a secret
// that must be form-urlencoded inside the header.
func TestExchangeBasic(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth2Config("single", singleSecret, singleRedirect, oauth2.AuthStyleInHeader)
	code := e.code(grant.CodeRequest{ClientID: "single", RedirectURI: singleRedirect, Scope: "read write"})
	tok, err := conf.Exchange(e.ctx(), code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "read write" {
		t.Errorf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	if !e.active(tok.AccessToken) {
		t.Error("issued access token is not active")
	}
}

func TestExchangeNoRefreshForClientWithoutRefreshGrant(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "norefresh", Scope: "read"})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	wantTokens(t, e.post("/o/token/", form, basic("norefresh", "norefresh-secret")), "read", false)
}

func TestPKCE(t *testing.T) {
	verifier := oauth2.GenerateVerifier()
	other := oauth2.GenerateVerifier()
	plain := strings.Repeat("p", 50)
	for _, tc := range []struct {
		name              string
		challenge, method string
		opts              []oauth2.AuthCodeOption
		wantErr           string // "" for success
	}{
		{"S256 good", oauth2.S256ChallengeFromVerifier(verifier), "S256", []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, ""},
		{"S256 wrong verifier", oauth2.S256ChallengeFromVerifier(verifier), "S256", []oauth2.AuthCodeOption{oauth2.VerifierOption(other)}, "invalid_grant"},
		{"S256 verifier is the challenge", oauth2.S256ChallengeFromVerifier(verifier), "S256", []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.S256ChallengeFromVerifier(verifier))}, "invalid_grant"},
		{"plain good", plain, "plain", []oauth2.AuthCodeOption{oauth2.VerifierOption(plain)}, ""},
		{"plain by default", plain, "", []oauth2.AuthCodeOption{oauth2.VerifierOption(plain)}, ""},
		{"plain wrong verifier", plain, "plain", []oauth2.AuthCodeOption{oauth2.VerifierOption(strings.Repeat("q", 50))}, "invalid_grant"},
		{"verifier too short", plain, "plain", []oauth2.AuthCodeOption{oauth2.VerifierOption("short")}, "invalid_grant"},
		{"verifier with bad characters", plain, "plain", []oauth2.AuthCodeOption{oauth2.VerifierOption(strings.Repeat("p", 49) + "!")}, "invalid_grant"},
		{"missing verifier", oauth2.S256ChallengeFromVerifier(verifier), "S256", nil, "invalid_request"},
		{"verifier without challenge", "", "", []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			conf := e.oauth2Config("mezzo", "mezzo-secret", mezzoRedirect, oauth2.AuthStyleInHeader)
			code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read",
				CodeChallenge: tc.challenge, CodeChallengeMethod: tc.method})
			tok, err := conf.Exchange(e.ctx(), code, tc.opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if !e.active(tok.AccessToken) {
					t.Error("issued access token is not active")
				}
				return
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tc.wantErr || re.Response.StatusCode != http.StatusBadRequest {
				t.Fatalf("Exchange error %v, want %s 400", err, tc.wantErr)
			}
			// A failed check does not burn the code: the right verifier
			// still works when there is one.
			if tc.challenge != "" && tc.method == "S256" {
				if _, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(verifier)); err != nil {
					t.Errorf("exchange with the right verifier after a failed one: %v", err)
				}
			}
		})
	}
}

func TestIssueCodeRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		req  grant.CodeRequest
	}{
		{"unknown client", grant.CodeRequest{ClientID: "nobody", UserID: 1}},
		{"no user", grant.CodeRequest{ClientID: "single", UserID: 0}},
		{"unregistered redirect", grant.CodeRequest{ClientID: "single", UserID: 1, RedirectURI: "https://single.example.org/cb/evil"}},
		{"no redirect, several registered", grant.CodeRequest{ClientID: "mezzo", UserID: 1}},
		{"method without challenge", grant.CodeRequest{ClientID: "single", UserID: 1, CodeChallengeMethod: "S256"}},
		{"unknown method", grant.CodeRequest{ClientID: "single", UserID: 1, CodeChallenge: strings.Repeat("a", 43), CodeChallengeMethod: "S512"}},
		{"short challenge", grant.CodeRequest{ClientID: "single", UserID: 1, CodeChallenge: "abc", CodeChallengeMethod: "S256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := e.svc.IssueCode(context.Background(), tc.req); err == nil {
				t.Errorf("IssueCode = %q, want an error", c)
			}
		})
	}
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	form := exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret")
	first := wantTokens(t, e.post("/o/token/", form, noAuth), "read", true)
	if !e.active(first.str("access_token")) {
		t.Fatal("first access token not active")
	}
	wantError(t, e.post("/o/token/", form, noAuth), http.StatusBadRequest, "invalid_grant")
	if e.active(first.str("access_token")) {
		t.Error("the access token issued from a replayed code is still active")
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}}
	wantError(t, e.post("/o/token/", refresh, basic("mezzo", "mezzo-secret")), http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(e.logs.String(), "replay=true") {
		t.Error("the replay was not logged")
	}
}

// TestConcurrentExchange: of many concurrent exchanges of one code,
// exactly one succeeds.
func TestConcurrentExchange(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read"})
	form := exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret")
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() { statuses[i] = e.post("/o/token/", form, noAuth).status })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		} else if s != http.StatusBadRequest {
			t.Errorf("status %d, want 200 or 400", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d exchanges succeeded, want 1", ok)
	}
}

func TestCodeChecks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      grant.CodeRequest
		form     func(code string) url.Values
		auth     authFunc
		advance  time.Duration
		wantCode string // "" for success
	}{
		{
			name: "code of another client",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values { return exchangeForm(c, mezzoRedirect, "other", "other-secret") },
			auth: noAuth, wantCode: "invalid_grant",
		},
		{
			name: "redirect_uri differs",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values { return exchangeForm(c, mezzoRedirect2, "mezzo", "mezzo-secret") },
			auth: noAuth, wantCode: "invalid_grant",
		},
		{
			name: "redirect_uri differs by a trailing slash",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values {
				return exchangeForm(c, strings.TrimSuffix(mezzoRedirect, "/"), "mezzo", "mezzo-secret")
			},
			auth: noAuth, wantCode: "invalid_grant",
		},
		{
			name: "redirect_uri missing though the authorize request had one",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values { return url.Values{"grant_type": {"authorization_code"}, "code": {c}} },
			auth: basic("mezzo", "mezzo-secret"), wantCode: "invalid_grant",
		},
		{
			name: "no redirect_uri at authorize nor at token",
			req:  grant.CodeRequest{ClientID: "single"},
			form: func(c string) url.Values { return url.Values{"grant_type": {"authorization_code"}, "code": {c}} },
			auth: basic("single", singleSecret),
		},
		{
			name: "no redirect_uri at authorize, the registered one at token",
			req:  grant.CodeRequest{ClientID: "single"},
			form: func(c string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {singleRedirect}}
			},
			auth: basic("single", singleSecret),
		},
		{
			name: "no redirect_uri at authorize, another one at token",
			req:  grant.CodeRequest{ClientID: "single"},
			form: func(c string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {otherRedirect}}
			},
			auth: basic("single", singleSecret), wantCode: "invalid_grant",
		},
		{
			name: "code just before expiry",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values { return exchangeForm(c, mezzoRedirect, "mezzo", "mezzo-secret") },
			auth: noAuth, advance: 59 * time.Second,
		},
		{
			name: "expired code",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(c string) url.Values { return exchangeForm(c, mezzoRedirect, "mezzo", "mezzo-secret") },
			auth: noAuth, advance: 61 * time.Second, wantCode: "invalid_grant",
		},
		{
			name: "unknown code",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(string) url.Values { return exchangeForm("made-up", mezzoRedirect, "mezzo", "mezzo-secret") },
			auth: noAuth, wantCode: "invalid_grant",
		},
		{
			name: "missing code",
			req:  grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect},
			form: func(string) url.Values { return exchangeForm("", mezzoRedirect, "mezzo", "mezzo-secret") },
			auth: noAuth, wantCode: "invalid_request",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			code := e.code(tc.req)
			e.clock.Advance(tc.advance)
			wantOutcome(t, e.post("/o/token/", tc.form(code), tc.auth), http.StatusBadRequest, tc.wantCode, true)
		})
	}
}

// TestCodeOfAnotherClientStaysUsable: presenting a code as the wrong
// client does not let that client burn it for the right one.
func TestCodeOfAnotherClientStaysUsable(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})
	wantError(t, e.post("/o/token/", exchangeForm(code, otherRedirect, "other", "other-secret"), noAuth), http.StatusBadRequest, "invalid_grant")
	wantTokens(t, e.post("/o/token/", exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth2Config("mezzo", "mezzo-secret", mezzoRedirect, oauth2.AuthStyleInParams)
	tok, err := conf.Exchange(e.ctx(), e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect, Scope: "read write"}))
	if err != nil {
		t.Fatal(err)
	}
	// An expired access token makes the TokenSource refresh.
	expired := &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
	fresh, err := conf.TokenSource(e.ctx(), expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh did not rotate: %+v", fresh)
	}
	if fresh.Extra("scope") != "read write" {
		t.Errorf("scope after refresh %v, want the original", fresh.Extra("scope"))
	}
	if e.active(tok.AccessToken) {
		t.Error("the old access token is still active after a refresh")
	}
	if !e.active(fresh.AccessToken) {
		t.Error("the new access token is not active")
	}
	// The old refresh token no longer works.
	old := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	wantError(t, e.post("/o/token/", old, basic("mezzo", "mezzo-secret")), http.StatusBadRequest, "invalid_grant")

	// Narrowing the scope works, and the next refresh may widen it back to
	// the original grant, never beyond.
	narrow := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {fresh.RefreshToken}, "scope": {"read"}}, basic("mezzo", "mezzo-secret")), "read", true)
	wide := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {narrow.str("refresh_token")}, "scope": {"write read"}}, basic("mezzo", "mezzo-secret")), "write read", true)
	wantError(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {wide.str("refresh_token")}, "scope": {"read admin"}}, basic("mezzo", "mezzo-secret")),
		http.StatusBadRequest, "invalid_scope")
	// A refused scope does not consume the refresh token.
	wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {wide.str("refresh_token")}}, basic("mezzo", "mezzo-secret")), "read write", true)
}

func TestRefreshChecks(t *testing.T) {
	e := newEnv(t)
	first := wantTokens(t, e.post("/o/token/", exchangeForm(
		e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect}), mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
	rt := first.str("refresh_token")

	t.Run("refresh token of another client", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("other", "other-secret"))
		wantError(t, r, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("access token as refresh token", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("access_token")}}, basic("mezzo", "mezzo-secret"))
		wantError(t, r, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("missing refresh token", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}}, basic("mezzo", "mezzo-secret"))
		wantError(t, r, http.StatusBadRequest, "invalid_request")
	})
	t.Run("refresh after the access token was revoked", func(t *testing.T) {
		rev := e.post("/o/revoke_token/", url.Values{"token": {first.str("access_token")}}, basic("mezzo", "mezzo-secret"))
		if rev.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", rev.status, rev.raw)
		}
		if e.active(first.str("access_token")) {
			t.Fatal("revoked access token still active")
		}
		// Revoking an access token leaves its refresh token: a new pair.
		r := e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("mezzo", "mezzo-secret"))
		wantTokens(t, r, "read", true)
		if !e.active(r.str("access_token")) {
			t.Error("new access token not active")
		}
	})
	t.Run("expired refresh token", func(t *testing.T) {
		r := wantTokens(t, e.post("/o/token/", exchangeForm(
			e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect}), mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
		e.clock.Advance(31 * 24 * time.Hour)
		wantError(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}},
			basic("mezzo", "mezzo-secret")), http.StatusBadRequest, "invalid_grant")
	})
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	conf := &clientcredentials.Config{
		ClientID: "ci-robot", ClientSecret: "ci-robot-secret",
		TokenURL: e.srv.URL + "/o/token/", Scopes: []string{"read", "introspection"},
	}
	tok, err := conf.Token(e.ctx())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("client_credentials issued a refresh token")
	}
	a, err := e.svc.LookupAccess(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if a.UserID != 0 || a.Username != "" || a.ClientID != "ci-robot" || a.Scope != "read introspection" {
		t.Errorf("LookupAccess = %+v", a)
	}

	t.Run("default scope", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("ci-robot", "ci-robot-secret"))
		wantTokens(t, r, "read", false)
	})
	t.Run("scope not allowed", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}}, basic("ci-robot", "ci-robot-secret"))
		wantError(t, r, http.StatusBadRequest, "invalid_scope")
	})
	t.Run("default scope not allowed", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("writer-robot", "writer-robot-secret"))
		wantError(t, r, http.StatusBadRequest, "invalid_scope")
	})
	t.Run("client not allowed the grant", func(t *testing.T) {
		r := e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("mezzo", "mezzo-secret"))
		wantError(t, r, http.StatusBadRequest, "unauthorized_client")
	})
}

func TestPasswordGrant(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth2Config("mezzo", "mezzo-secret", "", oauth2.AuthStyleInHeader)
	conf.Scopes = []string{"read", "write"}
	tok, err := conf.PasswordCredentialsToken(e.ctx(), "alice", alicePassword)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	a, err := e.svc.LookupAccess(context.Background(), tok.AccessToken)
	if err != nil || a.UserID != 1 || a.Scope != "read write" {
		t.Errorf("LookupAccess = %+v, %v", a, err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token for a client allowed refresh_token")
	}

	for _, tc := range []struct {
		name       string
		form       url.Values
		auth       authFunc
		status     int
		code       string
		wantUserID int64 // for successes
	}{
		{"directory user", url.Values{"username": {"bob"}, "password": {bobLDAPPW}}, basic("mezzo", "mezzo-secret"), 200, "", 2},
		{"username case-insensitive", url.Values{"username": {"ALICE"}, "password": {alicePassword}}, basic("mezzo", "mezzo-secret"), 200, "", 1},
		{"wrong password", url.Values{"username": {"alice"}, "password": {"nope"}}, basic("mezzo", "mezzo-secret"), 400, "invalid_grant", 0},
		{"empty password", url.Values{"username": {"bob"}, "password": {""}}, basic("mezzo", "mezzo-secret"), 400, "invalid_grant", 0},
		{"unknown user", url.Values{"username": {"mallory"}, "password": {"x"}}, basic("mezzo", "mezzo-secret"), 400, "invalid_grant", 0},
		{"directory down", url.Values{"username": {"down"}, "password": {"x"}}, basic("mezzo", "mezzo-secret"), 503, "temporarily_unavailable", 0},
		{"missing password", url.Values{"username": {"alice"}}, basic("mezzo", "mezzo-secret"), 400, "invalid_request", 0},
		{"scope not allowed", url.Values{"username": {"alice"}, "password": {alicePassword}, "scope": {"admin"}}, basic("mezzo", "mezzo-secret"), 400, "invalid_scope", 0},
		{"client not allowed the grant", url.Values{"username": {"alice"}, "password": {alicePassword}}, basic("single", singleSecret), 400, "unauthorized_client", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", "password")
			r := e.post("/o/token/", tc.form, tc.auth)
			if tc.code != "" {
				wantError(t, r, tc.status, tc.code)
				if tc.code == "invalid_grant" && r.str("error_description") != "invalid username or password" {
					t.Errorf("error_description %q", r.str("error_description"))
				}
				return
			}
			wantTokens(t, r, "read", true)
			a, err := e.svc.LookupAccess(context.Background(), r.str("access_token"))
			if err != nil || a.UserID != tc.wantUserID {
				t.Errorf("LookupAccess = %+v, %v; want user %d", a, err, tc.wantUserID)
			}
		})
	}
}

func TestClientAuthentication(t *testing.T) {
	e := newEnv(t)
	form := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		auth   authFunc
		status int
		code   string
	}{
		{"basic ok", form(), basic("ci-robot", "ci-robot-secret"), 200, ""},
		{"body ok", form("client_id", "ci-robot", "client_secret", "ci-robot-secret"), noAuth, 200, ""},
		{"basic and the same client_id in the body", form("client_id", "ci-robot"), basic("ci-robot", "ci-robot-secret"), 200, ""},
		{"unknown client, basic", form(), basic("nobody", "x"), 401, "invalid_client"},
		{"wrong secret, basic", form(), basic("ci-robot", "wrong"), 401, "invalid_client"},
		{"wrong secret, body", form("client_id", "ci-robot", "client_secret", "wrong"), noAuth, 401, "invalid_client"},
		{"client_id without secret", form("client_id", "ci-robot"), noAuth, 401, "invalid_client"},
		{"no credentials", form(), noAuth, 401, "invalid_client"},
		{"malformed basic", form(), func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }, 401, "invalid_client"},
		{"basic without colon", form(), func(r *http.Request) { r.Header.Set("Authorization", "Basic Y2ktcm9ib3Q=") }, 401, "invalid_client"},
		{"both methods", form("client_id", "ci-robot", "client_secret", "ci-robot-secret"), basic("ci-robot", "ci-robot-secret"), 400, "invalid_request"},
		{"basic and another client_id", form("client_id", "mezzo"), basic("ci-robot", "ci-robot-secret"), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOutcome(t, e.post("/o/token/", tc.form, tc.auth), tc.status, tc.code, false)
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t)
	const form = "application/x-www-form-urlencoded"
	creds := basic("ci-robot", "ci-robot-secret")
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"unsupported grant", "POST", form, "grant_type=urn:ietf:params:oauth:grant-type:device_code", 400, "unsupported_grant_type"},
		{"implicit is not a grant", "POST", form, "grant_type=implicit", 400, "unsupported_grant_type"},
		{"missing grant_type", "POST", form, "scope=read", 400, "invalid_request"},
		{"repeated parameter", "POST", form, "grant_type=client_credentials&scope=read&scope=introspection", 400, "invalid_request"},
		{"repeated grant_type", "POST", form, "grant_type=client_credentials&grant_type=password", 400, "invalid_request"},
		{"bad percent-encoding", "POST", form, "grant_type=client_credentials&scope=%zz", 400, "invalid_request"},
		{"JSON body", "POST", "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"no content type", "POST", "", "grant_type=client_credentials", 400, "invalid_request"},
		{"oversized body", "POST", form, "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10), 413, "invalid_request"},
		{"GET", "GET", "", "", 405, "invalid_request"},
		{"PUT", "PUT", form, "grant_type=client_credentials", 405, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(tc.method, "/o/token/", tc.contentType, tc.body, creds)
			wantError(t, r, tc.status, tc.code)
		})
	}
	// The server survived all of it.
	wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, creds), "read", false)
}

// TestLogsHoldNoSecrets walks the grants and checks the log: one line per
// request, and no secret, password, code or token in it.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	code := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})
	ok := wantTokens(t, e.post("/o/token/", exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), "read", true)
	e.post("/o/token/", exchangeForm(code, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth)
	pw := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}},
		basic("mezzo", "mezzo-secret")), "read", true)
	e.post("/o/token/", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong-pw-123"}}, basic("mezzo", "mezzo-secret"))
	e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("ci-robot", "bad-secret-456"))
	e.post("/o/introspect/", url.Values{"token": {pw.str("access_token")}}, basic("ci-robot", "ci-robot-secret"))
	e.post("/o/revoke_token/", url.Values{"token": {pw.str("refresh_token")}}, basic("mezzo", "mezzo-secret"))

	logs := e.logs.String()
	for _, secret := range []string{code, ok.str("access_token"), ok.str("refresh_token"), pw.str("access_token"),
		pw.str("refresh_token"), "mezzo-secret", "ci-robot-secret", "bad-secret-456", alicePassword, "wrong-pw-123"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds a secret %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"token issued", "token request refused", "client_id=mezzo", "grant_type=password", "user=alice"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestAdminRevocation(t *testing.T) {
	e := newEnv(t)
	issue := func(user string) reply {
		return wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"password"}, "username": {user},
			"password": {map[string]string{"alice": alicePassword, "bob": bobLDAPPW}[user]}}, basic("mezzo", "mezzo-secret")), "read", true)
	}
	a1, a2, b := issue("alice"), issue("alice"), issue("bob")
	robot := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("ci-robot", "ci-robot-secret")), "read", false)
	pending := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})

	list := e.svc.List()
	if len(list) != 7 { // 3 pairs and one access token
		t.Fatalf("List has %d tokens, want 7: %+v", len(list), list)
	}
	for _, i := range list {
		if i.Kind != "access_token" && i.Kind != "refresh_token" || i.GrantType == "" || i.ClientID == "" {
			t.Errorf("List entry %+v", i)
		}
	}
	if n := e.svc.RevokeUser(0); n != 0 {
		t.Errorf("RevokeUser(0) = %d, want 0", n)
	}
	if n := e.svc.RevokeUser(1); n != 4 {
		t.Errorf("RevokeUser(alice) = %d, want 4", n)
	}
	for _, r := range []reply{a1, a2} {
		if e.active(r.str("access_token")) {
			t.Error("alice's token survived RevokeUser")
		}
	}
	if !e.active(b.str("access_token")) || !e.active(robot.str("access_token")) {
		t.Error("RevokeUser(alice) revoked others' tokens")
	}
	wantError(t, e.post("/o/token/", exchangeForm(pending, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), http.StatusBadRequest, "invalid_grant")
	if n := e.svc.RevokeAll(); n != 3 {
		t.Errorf("RevokeAll = %d, want 3", n)
	}
	if e.active(b.str("access_token")) || e.active(robot.str("access_token")) || len(e.svc.List()) != 0 {
		t.Error("tokens survived RevokeAll")
	}
}

func TestAccessTokenExpires(t *testing.T) {
	e := newEnv(t)
	r := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"client_credentials"}}, basic("ci-robot", "ci-robot-secret")), "read", false)
	e.clock.Advance(36000*time.Second - time.Second)
	if !e.active(r.str("access_token")) {
		t.Fatal("token expired early")
	}
	e.clock.Advance(time.Second)
	if _, err := e.svc.LookupAccess(context.Background(), r.str("access_token")); !errors.Is(err, grant.ErrInvalidToken) {
		t.Errorf("LookupAccess of an expired token: %v, want ErrInvalidToken", err)
	}
	if len(e.svc.List()) != 0 {
		t.Error("List shows an expired token")
	}
}

// TestRevokeClient: the tokens and pending codes of the client go, those
// of other clients stay.
func TestRevokeClient(t *testing.T) {
	e := newEnv(t)
	mezzo := wantTokens(t, e.post("/o/token/", url.Values{"grant_type": {"password"}, "username": {"alice"},
		"password": {alicePassword}}, basic("mezzo", "mezzo-secret")), "read", true)
	robot := e.issueRobotToken("read")
	pending := e.code(grant.CodeRequest{ClientID: "mezzo", RedirectURI: mezzoRedirect})
	otherPending := e.code(grant.CodeRequest{ClientID: "single", RedirectURI: singleRedirect})

	if n := e.svc.RevokeClient("mezzo"); n != 2 {
		t.Errorf("RevokeClient(mezzo) = %d, want 2", n)
	}
	if e.active(mezzo.str("access_token")) {
		t.Error("mezzo's access token survived RevokeClient")
	}
	wantError(t, e.post("/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {mezzo.str("refresh_token")}},
		basic("mezzo", "mezzo-secret")), http.StatusBadRequest, "invalid_grant")
	wantError(t, e.post("/o/token/", exchangeForm(pending, mezzoRedirect, "mezzo", "mezzo-secret"), noAuth), http.StatusBadRequest, "invalid_grant")

	if !e.active(robot) {
		t.Error("RevokeClient(mezzo) revoked ci-robot's token")
	}
	wantTokens(t, e.post("/o/token/", exchangeForm(otherPending, singleRedirect, "single", singleSecret), noAuth), "read", true)
	if n := e.svc.RevokeClient("nobody"); n != 0 {
		t.Errorf("RevokeClient(nobody) = %d, want 0", n)
	}
}

// TestTokensOfARemovedUser: once the user is gone, the refresh token is
// refused and revoked (it stays dead if the user comes back), and
// introspection finds neither token active.
func TestTokensOfARemovedUser(t *testing.T) {
	e := newEnv(t)
	u := e.issueUserTokens()
	alice, _ := e.users.ByID(1)
	e.users.Remove(1)

	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.str("refresh_token")}}
	r := e.post("/o/token/", refresh, basic("mezzo", "mezzo-secret"))
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.str("error_description"), "no longer exists") {
		t.Errorf("error_description %q does not say the user is gone", r.str("error_description"))
	}
	for _, kind := range []string{"access_token", "refresh_token"} {
		r := e.post("/o/introspect/", url.Values{"token": {u.str(kind)}}, basic("ci-robot", "ci-robot-secret"))
		if r.status != http.StatusOK || len(r.body) != 1 || r.body["active"] != false {
			t.Errorf("introspection of the %s of a removed user: %d %s", kind, r.status, r.raw)
		}
	}

	if err := e.users.Put(alice); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.post("/o/token/", refresh, basic("mezzo", "mezzo-secret")), http.StatusBadRequest, "invalid_grant")
}
