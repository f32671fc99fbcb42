package clients_test

import (
	"slices"
	"testing"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/fixtures"
)

var seed = []fixtures.Client{
	{ClientID: "mezzo", ClientSecret: "s1", Name: "Mezzo", RedirectURIs: []string{"https://example.org/cb"}},
	{ClientID: "multi", ClientSecret: "s2", Name: "Multi", RedirectURIs: []string{
		"https://App.Example/cb?tenant=1", "http://localhost:8000/callback/", "https://app.example/other",
	}, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "introspection"}},
	{ClientID: "public", Name: "Public", RedirectURIs: []string{"com.example.app:/cb"}},
}

func TestRedirectURI(t *testing.T) {
	r := clients.NewRegistry(seed)
	mezzo, _ := r.Lookup("mezzo")
	multi, _ := r.Lookup("multi")
	for _, tc := range []struct {
		name      string
		c         clients.Client
		requested string
		want      string
		ok        bool
	}{
		{"exact", mezzo, "https://example.org/cb", "https://example.org/cb", true},
		{"absent, one registered", mezzo, "", "https://example.org/cb", true},
		{"absent, several registered", multi, "", "", false},
		{"one of several", multi, "http://localhost:8000/callback/", "http://localhost:8000/callback/", true},
		{"with its query", multi, "https://App.Example/cb?tenant=1", "https://App.Example/cb?tenant=1", true},
		{"evil suffix host", mezzo, "https://example.org.evil.example/cb", "", false},
		{"evil prefix host", mezzo, "https://evil-example.org/cb", "", false},
		{"user info", mezzo, "https://example.org@evil.example/cb", "", false},
		{"longer path", mezzo, "https://example.org/cb/more", "", false},
		{"prefix path", mezzo, "https://example.org/c", "", false},
		{"extra query", mezzo, "https://example.org/cb?x=1", "", false},
		{"other scheme", mezzo, "http://example.org/cb", "", false},
		{"other port", mezzo, "https://example.org:8443/cb", "", false},
		{"trailing slash", mezzo, "https://example.org/cb/", "", false},
		{"query dropped", multi, "https://App.Example/cb", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.c.RedirectURI(tc.requested)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RedirectURI(%q) = %q, %v; want %q, %v", tc.requested, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAllowsGrantAndScope(t *testing.T) {
	r := clients.NewRegistry(seed)
	mezzo, _ := r.Lookup("mezzo") // lists neither: the defaults
	multi, _ := r.Lookup("multi")
	for _, tc := range []struct {
		c     clients.Client
		grant string
		want  bool
	}{
		{mezzo, "authorization_code", true},
		{mezzo, "refresh_token", true},
		{mezzo, "client_credentials", false},
		{mezzo, "password", false},
		{multi, "client_credentials", true},
		{multi, "authorization_code", false},
	} {
		if got := tc.c.AllowsGrant(tc.grant); got != tc.want {
			t.Errorf("%s.AllowsGrant(%q) = %v, want %v", tc.c.ID, tc.grant, got, tc.want)
		}
	}
	for _, tc := range []struct {
		c     clients.Client
		scope string
		want  bool
	}{
		{mezzo, "read", true},
		{mezzo, "read write", true},
		{mezzo, "", true},
		{mezzo, "introspection", false},
		{mezzo, "read admin", false},
		{multi, "read introspection", true},
		{multi, "write", false},
	} {
		if got := tc.c.AllowsScope(tc.scope); got != tc.want {
			t.Errorf("%s.AllowsScope(%q) = %v, want %v", tc.c.ID, tc.scope, got, tc.want)
		}
	}
}

func TestCheckSecretAndAuthenticate(t *testing.T) {
	r := clients.NewRegistry(seed)
	for _, tc := range []struct {
		name, id, secret string
		want             bool
	}{
		{"right secret", "mezzo", "s1", true},
		{"wrong secret", "mezzo", "s2", false},
		{"empty secret", "mezzo", "", false},
		{"prefix of the secret", "mezzo", "s", false},
		{"unknown client", "nobody", "s1", false},
		{"client without a secret, empty secret", "public", "", false},
		{"client without a secret, any secret", "public", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := r.Authenticate(tc.id, tc.secret)
			if ok != tc.want {
				t.Errorf("Authenticate(%q, %q) ok = %v, want %v", tc.id, tc.secret, ok, tc.want)
			}
			if ok && c.ID != tc.id || !ok && c.ID != "" {
				t.Errorf("Authenticate(%q, %q) = client %q", tc.id, tc.secret, c.ID)
			}
			if known, found := r.Lookup(tc.id); found && known.CheckSecret(tc.secret) != tc.want {
				t.Errorf("CheckSecret(%q) = %v, want %v", tc.secret, !tc.want, tc.want)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	r := clients.NewRegistry(seed)
	multi, _ := r.Lookup("multi")
	// Scheme and host in lower case, each once.
	if got, want := multi.Origins(), []string{"https://app.example", "http://localhost:8000"}; !slices.Equal(got, want) {
		t.Errorf("Origins() = %q, want %q", got, want)
	}
	public, _ := r.Lookup("public")
	if got := public.Origins(); len(got) != 0 {
		t.Errorf("Origins() of a URI without a host = %q, want none", got)
	}
	for origin, want := range map[string]bool{
		"https://app.example":              true,
		"HTTPS://APP.EXAMPLE":              true,
		"https://example.org":              true,
		"http://localhost:8000":            true,
		"http://localhost:8001":            false,
		"http://example.org":               false,
		"https://example.org.evil.example": false,
		"https://evil.example":             false,
		"":                                 false,
		"example.org":                      false,
	} {
		if got := r.IsRegisteredOrigin(origin); got != want {
			t.Errorf("IsRegisteredOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestByName(t *testing.T) {
	r := clients.NewRegistry(append(slices.Clone(seed),
		fixtures.Client{ClientID: "a-twin", Name: "MEZZO"}, // same name, smaller id
		fixtures.Client{ClientID: "Multi", Name: "Named like multi's name"},
	))
	for _, tc := range []struct{ name, wantID string }{
		{"Multi", "multi"}, // a name before an id
		{"multi", "multi"},
		{"Mezzo", "a-twin"}, // names may repeat: the smallest id
		{"public", "public"},
		{"nobody", ""},
	} {
		c, ok := r.ByName(tc.name)
		if ok != (tc.wantID != "") || c.ID != tc.wantID {
			t.Errorf("ByName(%q) = %q, %v; want %q", tc.name, c.ID, ok, tc.wantID)
		}
	}
}

func TestReplace(t *testing.T) {
	fx := slices.Clone(seed)
	fx[0].RedirectURIs = slices.Clone(fx[0].RedirectURIs)
	r := clients.NewRegistry(fx)
	// The registry keeps its own copies of the fixture's lists.
	fx[0].RedirectURIs[0] = "https://evil.example/cb"
	if c, _ := r.Lookup("mezzo"); c.RedirectURIs[0] != "https://example.org/cb" {
		t.Errorf("the registry shares the fixture's slice: %q", c.RedirectURIs)
	}
	r.Replace([]fixtures.Client{{ClientID: "new", ClientSecret: "n", Name: "New", RedirectURIs: []string{"https://new.example/cb"}}})
	if _, ok := r.Lookup("mezzo"); ok {
		t.Error("a removed client is still found")
	}
	if _, ok := r.Authenticate("mezzo", "s1"); ok {
		t.Error("a removed client still authenticates")
	}
	if r.IsRegisteredOrigin("https://example.org") || !r.IsRegisteredOrigin("https://new.example") {
		t.Error("origins not replaced")
	}
	if all := r.All(); len(all) != 1 || all[0].ID != "new" {
		t.Errorf("All() = %+v, want only new", all)
	}
	if _, ok := r.Authenticate("new", "n"); !ok {
		t.Error("the new client does not authenticate")
	}
}
