package main

import (
	"context"
	"reflect"
	"slices"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/users"
)

// reload reads the fixtures again (on SIGHUP). A bad file is refused with
// the same error as at start and the fixtures in force stay. Otherwise the
// clients and users are replaced, the embedded directory is restarted
// with the new seed when it changed, and the tokens of users and clients
// that are gone (or of a client whose secret changed) are revoked; the
// tokens of users who remain stay valid.
func (a *app) reload(ctx context.Context) error {
	fx, err := loadFixtures(a.cfg)
	if err != nil {
		a.log.Error("reload refused: the fixtures in force stay", "err", err)
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dir != nil && !sameDirectory(a.fixtures.Directory, fx.Directory) {
		addr := a.dir.Addr()
		a.dir.Close()
		dir, client, err := a.startDirectory(ctx, fx, addr)
		if err != nil {
			// Bring the old seed back on the same address.
			old, oldClient, rerr := a.startDirectory(ctx, a.fixtures, addr)
			if rerr == nil {
				a.dir, a.ldap = old, oldClient
			}
			a.log.Error("reload refused: the new directory did not start; the fixtures in force stay", "err", err)
			return err
		}
		a.dir, a.ldap = dir, client
	}
	before := a.users.All()
	clientsBefore := a.clients.All()
	a.users.Replace(fx.Users, a.userDirectory())
	a.clients.Replace(fx.Clients)
	revoked := 0
	for _, u := range before {
		now, ok := a.users.ByID(u.ID)
		if !ok || !sameIdentity(u, now) {
			revoked += a.tokens.RevokeUser(u.ID)
		}
	}
	// A client that is gone, or whose secret changed, keeps no token.
	for _, c := range clientsBefore {
		if now, ok := a.clients.Lookup(c.ID); !ok || now.Secret != c.Secret {
			revoked += a.tokens.RevokeClient(c.ID)
		}
	}
	a.fixtures = fx
	a.log.Info("fixtures reloaded", "file", fx.Path, "clients", len(fx.Clients), "users", len(fx.Users),
		"directory_entries", len(fx.Directory.Entries), "tokens_revoked", revoked)
	return nil
}

// sameIdentity reports whether the id still names the same person.
func sameIdentity(a, b users.User) bool {
	return a.ID == b.ID && a.Username == b.Username
}

// sameDirectory compares two directory seeds. Hashes of plain passwords
// differ at every load (bcrypt salts), so those compare by the password.
func sameDirectory(a, b fixtures.Directory) bool {
	norm := func(d fixtures.Directory) fixtures.Directory {
		d.Line = 0
		d.Groups = slices.Clone(d.Groups)
		for i := range d.Groups {
			d.Groups[i].Line = 0
		}
		d.Entries = slices.Clone(d.Entries)
		for i := range d.Entries {
			d.Entries[i].Line = 0
			if d.Entries[i].Password != "" {
				d.Entries[i].PasswordHash = ""
			}
		}
		return d
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
