// Package clients holds the registered OAuth2 clients and the two checks
// every endpoint makes of them: the client's secret, compared in constant
// time, and the redirect URI, compared exactly.
package clients

import (
	"crypto/subtle"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ircam/ircam-auth/internal/fixtures"
)

// DefaultScope is the scope granted when a request names none.
const DefaultScope = "read"

// Client is a registered OAuth2 client.
type Client struct {
	ID                string
	Secret            string
	Name              string
	RedirectURIs      []string
	GrantTypes        []string
	SkipAuthorization bool
	Scopes            []string // the scopes this client may ask for
	AllowLoginHint    bool
}

// AllowsGrant reports whether the client may use the grant type. A client
// that lists no grant types may use authorization_code and refresh_token.
func (c Client) AllowsGrant(grant string) bool {
	if len(c.GrantTypes) == 0 {
		return grant == "authorization_code" || grant == "refresh_token"
	}
	return slices.Contains(c.GrantTypes, grant)
}

// AllowsScope reports whether every scope of the space-separated list is
// one the client may ask for. A client that lists no scopes may ask for
// read and write.
func (c Client) AllowsScope(scope string) bool {
	allowed := c.Scopes
	if len(allowed) == 0 {
		allowed = []string{"read", "write"}
	}
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(allowed, s) {
			return false
		}
	}
	return true
}

// CheckSecret compares secret with the client's in constant time.
func (c Client) CheckSecret(secret string) bool {
	return c.Secret != "" && subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) == 1
}

// RedirectURI returns the redirect URI to use for a request that gave
// requested: requested itself when it equals a registered URI exactly,
// the only registered URI when requested is empty, and false otherwise.
// No prefix, suffix or host-suffix matching.
func (c Client) RedirectURI(requested string) (string, bool) {
	if requested == "" {
		if len(c.RedirectURIs) == 1 {
			return c.RedirectURIs[0], true
		}
		return "", false
	}
	if slices.Contains(c.RedirectURIs, requested) {
		return requested, true
	}
	return "", false
}

// Origins returns the origin of each redirect URI, as Origin gives it,
// without repeats.
func (c Client) Origins() []string {
	var out []string
	for _, r := range c.RedirectURIs {
		if o, ok := Origin(r); ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// Origin returns the origin of an absolute URL, scheme://host[:port] with
// the scheme and host in lower case (they compare case-insensitively), and
// false when rawURL has none.
func Origin(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// Registry is the set of clients, safe for concurrent use and replaceable
// as a whole when the fixtures are reloaded.
type Registry struct {
	mu   sync.RWMutex
	byID map[string]Client
}

// NewRegistry returns a registry of the fixture clients.
func NewRegistry(seed []fixtures.Client) *Registry {
	r := &Registry{}
	r.Replace(seed)
	return r
}

// Replace swaps in a new set of clients.
func (r *Registry) Replace(seed []fixtures.Client) {
	m := make(map[string]Client, len(seed))
	for _, f := range seed {
		m[f.ClientID] = Client{
			ID: f.ClientID, Secret: f.ClientSecret, Name: f.Name,
			RedirectURIs:      slices.Clone(f.RedirectURIs),
			GrantTypes:        slices.Clone(f.GrantTypes),
			SkipAuthorization: f.SkipAuthorization,
			Scopes:            slices.Clone(f.Scopes),
			AllowLoginHint:    f.LoginHint,
		}
	}
	r.mu.Lock()
	r.byID = m
	r.mu.Unlock()
}

// Lookup finds a client by id.
func (r *Registry) Lookup(id string) (Client, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byID[id]
	return c, ok
}

// Authenticate returns the client when id and secret match. An unknown
// client costs the same comparison as a wrong secret.
func (r *Registry) Authenticate(id, secret string) (Client, bool) {
	c, ok := r.Lookup(id)
	if !ok {
		subtle.ConstantTimeCompare([]byte(secret), []byte(secret))
		return Client{}, false
	}
	if !c.CheckSecret(secret) {
		return Client{}, false
	}
	return c, true
}

// ByName finds a client by its display name, case-insensitively, or else
// by its id (the /logout_redirect/<client name> path). Names need not be
// unique: the client with the smallest id wins.
func (r *Registry) ByName(name string) (Client, bool) {
	all := r.All()
	for _, c := range all {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return r.Lookup(name)
}

// All returns every client, by id.
func (r *Registry) All() []Client {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Client, 0, len(r.byID))
	for _, c := range r.byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsRegisteredOrigin reports whether origin (scheme://host[:port], in any
// case) is the origin of a redirect URI of some client.
func (r *Registry) IsRegisteredOrigin(origin string) bool {
	o, ok := Origin(origin)
	if !ok {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.byID {
		if slices.Contains(c.Origins(), o) {
			return true
		}
	}
	return false
}
