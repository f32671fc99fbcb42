package main

import (
	"net/http"

	"github.com/ircam/ircam-auth/internal/admin"
	"github.com/ircam/ircam-auth/internal/authorize"
	"github.com/ircam/ircam-auth/internal/profile"
	"github.com/ircam/ircam-auth/internal/throttle"
	"github.com/ircam/ircam-auth/internal/token"
)

// routes wires the OAuth2 endpoints on a.mux: token, introspection and
// revocation (token), authorize with its pages and logout (authorize), and
// the profile (profile). Only this package knows them all.
func (a *app) routes() error {
	// One throttle for the login form and the password grant: failures
	// at either count against both.
	guard, err := throttle.New(throttle.Config{
		MaxFailuresPerUser: a.cfg.LoginMaxFailuresPerUser,
		MaxFailuresPerIP:   a.cfg.LoginMaxFailuresPerIP,
		Window:             a.cfg.LoginFailureWindow,
		Logger:             a.log,
	})
	if err != nil {
		return err
	}
	tokens, err := token.New(token.Config{
		Clients: a.clients, Users: a.users, Logger: a.log, Throttle: guard,
		AccessTokenTTL: a.cfg.AccessTokenTTL, CodeTTL: a.cfg.CodeTTL,
		TokenFile: a.cfg.TokenFile,
	})
	if err != nil {
		return err
	}
	a.tokens = tokens
	// Saves the token file, if any; after the HTTP server has stopped.
	a.closers = append(a.closers, func() { tokens.Close() })
	tokens.Register(a.mux)

	az, err := authorize.New(authorize.Config{
		Clients: a.clients, Users: a.users, Codes: tokens, Logger: a.log, Throttle: guard,
		PublicURL: a.cfg.PublicURL, PKCERequired: a.cfg.PKCERequired,
	})
	if err != nil {
		return err
	}
	az.Register(a.mux)

	a.mux.Handle("/profile/{$}", profile.New(tokens, a.users, a.log))

	if a.cfg.AdminToken != "" {
		adm, err := admin.New(admin.Config{
			Token: a.cfg.AdminToken, Users: a.users, Tokens: tokens,
			BcryptCost: a.cfg.BcryptCost, Logger: a.log,
		})
		if err != nil {
			return err
		}
		adm.Register(a.mux)
		a.log.Warn("the /admin/ test-control endpoints are on (--admin-token)")
	}
	a.mux.HandleFunc("GET /{$}", a.home)
	return nil
}

// home is where logout lands without a next: a plain page saying what
// this server is.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write([]byte("ircam-auth: a stand-in for the Ircam Auth OAuth2 identity provider.\n" +
		"Endpoints: /o/authorize/ /o/token/ /o/introspect/ /o/revoke_token/ /profile/ /accounts/logout/ /healthz\n"))
}
