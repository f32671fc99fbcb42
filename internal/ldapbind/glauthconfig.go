package ldapbind

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteGlauthConfig writes cfg as the TOML configuration file of a
// standalone glauth server (the glauth/glauth container of
// docker-compose.yml) listening on listen: the same users, groups, DNs and
// capabilities as the embedded directory.
func WriteGlauthConfig(w io.Writer, cfg DirectoryConfig, listen string) error {
	gc, err := glauthConfig(cfg)
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	q := strconv.Quote
	fmt.Fprintf(b, `# glauth configuration for docker-compose.yml, generated from the fixtures
# by "ircam-auth glauth-config"; a test checks it agrees with them.
# Users are named cn=<name>,ou=<primary group>,ou=users,%s.

[ldap]
  enabled = true
  listen = %s

[ldaps]
  enabled = false

[tracing]
  enabled = false

[backend]
  datastore = "config"
  baseDN = %s
  nameformat = "cn"
  groupformat = "ou"

[behaviors]
  IgnoreCapabilities = false
  LimitFailedBinds = false
`, gc.Backends[0].BaseDN, q(listen), q(gc.Backends[0].BaseDN))
	for _, u := range gc.Users {
		fmt.Fprintf(b, "\n[[users]]\n  name = %s\n", q(u.Name))
		if u.GivenName != "" {
			fmt.Fprintf(b, "  givenname = %s\n", q(u.GivenName))
		}
		if u.SN != "" {
			fmt.Fprintf(b, "  sn = %s\n", q(u.SN))
		}
		if u.Mail != "" {
			fmt.Fprintf(b, "  mail = %s\n", q(u.Mail))
		}
		fmt.Fprintf(b, "  uidnumber = %d\n  primarygroup = %d\n", u.UIDNumber, u.PrimaryGroup)
		if len(u.OtherGroups) > 0 {
			gids := make([]string, len(u.OtherGroups))
			for i, g := range u.OtherGroups {
				gids[i] = strconv.Itoa(g)
			}
			fmt.Fprintf(b, "  othergroups = [%s]\n", strings.Join(gids, ", "))
		}
		raw, _ := hex.DecodeString(u.PassBcrypt)
		fmt.Fprintf(b, "  passbcrypt = %s # hex of %s\n", q(u.PassBcrypt), string(raw[:min(7, len(raw))])+"...")
		for _, c := range u.Capabilities {
			fmt.Fprintf(b, "    [[users.capabilities]]\n    action = %s\n    object = %s\n", q(c.Action), q(c.Object))
		}
	}
	for _, g := range gc.Groups {
		fmt.Fprintf(b, "\n[[groups]]\n  name = %s\n  gidnumber = %d\n", q(g.Name), g.GIDNumber)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
