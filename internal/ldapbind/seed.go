package ldapbind

import (
	"strings"

	"github.com/ircam/ircam-auth/internal/fixtures"
)

// SeedFromFixtures is the seed of the embedded directory from the
// fixtures' directory section, and the plain password of the service
// account ircam-auth searches it as.
func SeedFromFixtures(d fixtures.Directory) (DirectoryConfig, string) {
	cfg := DirectoryConfig{BaseDN: d.BaseDN}
	for _, g := range d.Groups {
		cfg.Groups = append(cfg.Groups, DirectoryGroup{Name: g.Name, GID: g.GID})
	}
	var servicePassword string
	for _, e := range d.Entries {
		cfg.Users = append(cfg.Users, DirectoryUser{
			Name: e.UID, PasswordHash: e.PasswordHash, Mail: e.Mail,
			GivenName: e.GivenName, SN: e.SN, UIDNumber: e.UIDNumber,
			Groups: e.Groups, Search: e.Search,
		})
		if strings.EqualFold(e.UID, d.ServiceAccount) {
			servicePassword = e.Password
		}
	}
	return cfg, servicePassword
}
