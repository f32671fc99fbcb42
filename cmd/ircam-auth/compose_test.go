package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	glauthcfg "github.com/glauth/glauth/v2/pkg/config"
	"golang.org/x/crypto/bcrypt"
)

// The glauth container of docker-compose.yml must hold the same people as
// the embedded directory seeded from fixtures/default.yaml: same names,
// groups (so the same DNs), attributes, capabilities and passwords.
func TestComposeGlauthConfigAgreesWithFixtures(t *testing.T) {
	data, err := os.ReadFile("../../deploy/glauth/config.cfg")
	if err != nil {
		t.Fatal(err)
	}
	checkGlauthConfig(t, string(data))
}

// What "ircam-auth glauth-config" prints agrees with the fixtures too.
func TestGlauthConfigCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"glauth-config"}, env(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	checkGlauthConfig(t, out.String())
}

// checkGlauthConfig checks a glauth TOML configuration against the
// default fixtures.
func checkGlauthConfig(t *testing.T, doc string) {
	t.Helper()
	var compose glauthcfg.Config
	if _, err := toml.Decode(doc, &compose); err != nil {
		t.Fatal(err)
	}
	f, err := loadFixtures(config0())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := compose.Backend.BaseDN, f.Directory.BaseDN; got != want {
		t.Errorf("base DN %q, fixtures %q", got, want)
	}
	if compose.Backend.NameFormat != "cn" || compose.Backend.GroupFormat != "ou" {
		t.Errorf("name/group format %q/%q, want cn/ou as the embedded directory", compose.Backend.NameFormat, compose.Backend.GroupFormat)
	}
	gids := map[string]int{}
	for _, g := range f.Directory.Groups {
		gids[g.Name] = g.GID
	}
	composeGroups := map[string]int{}
	for _, g := range compose.Groups {
		composeGroups[g.Name] = g.GIDNumber
	}
	if len(composeGroups) != len(gids) {
		t.Errorf("groups %v, fixtures %v", composeGroups, gids)
	}
	for name, gid := range gids {
		if composeGroups[name] != gid {
			t.Errorf("group %s: gid %d, fixtures %d", name, composeGroups[name], gid)
		}
	}
	users := map[string]glauthcfg.User{}
	for _, u := range compose.Users {
		users[u.Name] = u
	}
	if len(users) != len(f.Directory.Entries) {
		t.Errorf("%d users in the compose config, %d entries in the fixtures", len(users), len(f.Directory.Entries))
	}
	for _, e := range f.Directory.Entries {
		u, ok := users[e.UID]
		if !ok {
			t.Errorf("%s: in the fixtures, not in the compose config", e.UID)
			continue
		}
		if u.Mail != e.Mail || u.GivenName != e.GivenName || u.SN != e.SN || u.UIDNumber != e.UIDNumber {
			t.Errorf("%s: compose %+v, fixtures %+v", e.UID, u, e)
		}
		if u.PrimaryGroup != gids[e.Groups[0]] {
			t.Errorf("%s: primary group %d, fixtures %s (%d): the DNs differ", e.UID, u.PrimaryGroup, e.Groups[0], gids[e.Groups[0]])
		}
		hash, err := hex.DecodeString(u.PassBcrypt)
		if err != nil || bcrypt.CompareHashAndPassword(hash, []byte(e.Password)) != nil {
			t.Errorf("%s: the compose password hash does not match the fixtures' password (regenerate: go run ./cmd/ircam-auth glauth-config > deploy/glauth/config.cfg)", e.UID)
		}
		search := false
		for _, c := range u.Capabilities {
			search = search || (c.Action == "search" && c.Object == "*")
		}
		if search != e.Search {
			t.Errorf("%s: search capability %v, fixtures %v", e.UID, search, e.Search)
		}
	}
}

// The compose file points the server at the glauth container with the
// fixtures' service account.
func TestComposeFileUsesTheServiceAccount(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := loadFixtures(config0())
	if err != nil {
		t.Fatal(err)
	}
	var password string
	for _, e := range f.Directory.Entries {
		if e.UID == f.Directory.ServiceAccount {
			password = e.Password
		}
	}
	for _, want := range []string{
		"IRCAM_AUTH_LDAP_BIND_DN: cn=" + f.Directory.ServiceAccount + ",ou=services,ou=users," + f.Directory.BaseDN,
		"IRCAM_AUTH_LDAP_BIND_PASSWORD: " + password,
		"IRCAM_AUTH_LDAP_BASE_DN: ou=users," + f.Directory.BaseDN,
		"glauth/glauth:v2",
		"condition: service_healthy",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("docker-compose.yml lacks %q", want)
		}
	}
}

func config0() config { return config{BcryptCost: bcrypt.MinCost} }
