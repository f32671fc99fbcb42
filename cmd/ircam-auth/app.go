package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	defaultfixtures "github.com/ircam/ircam-auth/fixtures"
	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/httplog"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/token"
	"github.com/ircam/ircam-auth/internal/users"
)

// app is the server's parts, wired together, before it listens.
type app struct {
	cfg config
	log *slog.Logger

	// mu guards what a reload replaces.
	mu       sync.RWMutex
	fixtures *fixtures.File
	dir      *ldapbind.Directory // the embedded directory; nil with --ldap-url
	ldap     *ldapbind.Client    // nil when there is no directory at all

	users   *users.Store
	clients *clients.Registry
	tokens  *token.Service
	mux     *http.ServeMux
	closers []func()
}

func loadFixtures(cfg config) (*fixtures.File, error) {
	if cfg.Fixtures == "" {
		return fixtures.Parse(defaultfixtures.DefaultName, defaultfixtures.Default, cfg.BcryptCost)
	}
	return fixtures.Load(cfg.Fixtures, cfg.BcryptCost)
}

// newApp loads the fixtures, starts the embedded directory unless an
// external one is configured, and wires the handlers.
func newApp(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	fx, err := loadFixtures(cfg)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: logger, fixtures: fx}
	if err := a.openDirectory(ctx); err != nil {
		a.Close()
		return nil, err
	}
	a.users, err = users.NewStore(fx.Users, a.userDirectory(), cfg.BcryptCost)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.clients = clients.NewRegistry(fx.Clients)
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /healthz", a.healthz)
	if err := a.routes(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// userDirectory is the directory the users are checked against; a nil
// interface, not a nil *ldapbind.Client, when there is none.
func (a *app) userDirectory() users.Directory {
	if a.ldap == nil {
		return nil
	}
	return a.ldap
}

func (a *app) openDirectory(ctx context.Context) error {
	dir, client, err := a.startDirectory(ctx, a.fixtures, a.cfg.LDAPListen)
	if err != nil {
		return err
	}
	a.dir, a.ldap = dir, client
	if dir != nil {
		a.closers = append(a.closers, func() {
			a.mu.RLock()
			defer a.mu.RUnlock()
			a.dir.Close()
		})
	}
	return nil
}

// startDirectory starts the embedded directory seeded from fx on listen
// (unless an external one is configured) and returns a client of the
// directory in use. Both are nil when there is no directory at all.
func (a *app) startDirectory(ctx context.Context, fx *fixtures.File, listen string) (*ldapbind.Directory, *ldapbind.Client, error) {
	cfg := a.cfg
	var lc ldapbind.Config
	var dir *ldapbind.Directory
	if cfg.LDAPURL != "" {
		lc = ldapbind.Config{
			URL: cfg.LDAPURL, BaseDN: cfg.LDAPBaseDN, UserFilter: cfg.LDAPUserFilter,
			BindDN: cfg.LDAPBindDN, BindPassword: cfg.LDAPBindPassword,
			UserDNTemplate: cfg.LDAPUserDNTemplate,
		}
	} else {
		d := fx.Directory
		if len(d.Entries) == 0 {
			a.log.Warn("no directory: the fixtures have no directory entries and --ldap-url is empty; only local users can log in")
			return nil, nil, nil
		}
		dcfg, servicePassword := ldapbind.SeedFromFixtures(d)
		dcfg.Listen, dcfg.Logger = listen, a.log
		var err error
		dir, err = ldapbind.StartDirectory(ctx, dcfg)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (is another ircam-auth running? choose another address with --ldap-listen)", err)
		}
		// The fixtures require a service account with entries: glauth
		// puts each user's primary group in the DN, so only a search
		// finds a user's DN.
		if lc, err = dir.ClientConfig(d.ServiceAccount); err != nil {
			dir.Close()
			return nil, nil, err
		}
		lc.BindPassword = servicePassword
	}
	lc.StartTLS, lc.CAFile, lc.InsecureTLS, lc.Timeout = cfg.LDAPStartTLS, cfg.LDAPCAFile, cfg.LDAPInsecureTLS, cfg.LDAPTimeout
	c, err := ldapbind.New(lc)
	if err != nil {
		if dir != nil {
			dir.Close()
		}
		return nil, nil, err
	}
	return dir, c, nil
}

// Handler is the HTTP handler of every endpoint.
func (a *app) Handler() http.Handler { return httplog.Middleware(a.log, a.mux) }

// Close stops what newApp started.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

func (a *app) directoryURL() string {
	c := a.ldapClient()
	if c == nil {
		return "none"
	}
	return c.Config().URL
}

func (a *app) ldapClient() *ldapbind.Client {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.ldap
}

// healthz answers 200 when the directory answers too, 503 naming the
// failing part otherwise.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	body := map[string]string{"status": "ok", "http": "ok"}
	status := http.StatusOK
	if c := a.ldapClient(); c == nil {
		body["directory"] = "none"
	} else {
		// Ping is bounded by --ldap-timeout, as a login is.
		if err := c.Ping(r.Context()); err != nil {
			status = http.StatusServiceUnavailable
			body["status"] = "unavailable"
			body["directory"] = "unavailable: " + err.Error()
		} else {
			body["directory"] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// printBanner tells a person where the server listens and who can log in.
func (a *app) printBanner(w io.Writer, base string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	fmt.Fprintf(w, "ircam-auth listening on %s (fixtures: %s)\n", base, a.fixtures.Path)
	if a.dir != nil {
		fmt.Fprintf(w, "embedded LDAP directory on %s, base DN %s\n", a.dir.URL(), a.fixtures.Directory.BaseDN)
	} else if a.ldap != nil {
		fmt.Fprintf(w, "LDAP directory: %s\n", a.ldap.Config().URL)
	}
	fmt.Fprintln(w, "clients:")
	for _, c := range a.clients.All() {
		fmt.Fprintf(w, "  %-12s %q grants=%s redirect_uris=%s\n", c.ID, c.Name,
			strings.Join(c.GrantTypes, ","), strings.Join(c.RedirectURIs, " "))
	}
	fmt.Fprintln(w, "users:")
	for _, u := range a.users.All() {
		how := "local password"
		if u.IsLDAPUser() {
			how = "LDAP password"
		}
		fmt.Fprintf(w, "  %-12s id=%d %s\n", u.Username, u.ID, how)
	}
	if a.dir != nil {
		fmt.Fprintln(w, "directory entries:")
		for _, e := range a.fixtures.Directory.Entries {
			note := ""
			if _, ok := a.users.Lookup(e.UID); !ok && !e.Search {
				note = " (directory only: added to the users at first login)"
			}
			if e.Search {
				note = " (service account)"
			}
			fmt.Fprintf(w, "  %-12s %s%s\n", e.UID, a.dir.UserDN(e.UID), note)
		}
	}
	fmt.Fprintf(w, "ready: %s/healthz\n", base)
}
