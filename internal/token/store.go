package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
)

// purgeEvery is how often, at most, a write sweeps expired codes and
// tokens out of the store. Memory is bounded by what is issued in one
// token lifetime.
const purgeEvery = time.Minute

// kind tells access tokens from refresh tokens.
type kind int

const (
	kindAccess kind = iota + 1
	kindRefresh
)

func (k kind) String() string {
	if k == kindRefresh {
		return "refresh_token"
	}
	return "access_token"
}

// code is an authorization code. A used code stays in the store until it
// expires, so that a replay is recognised and what it issued revoked.
type code struct {
	req       grant.CodeRequest
	expiresAt time.Time
	used      bool
	family    uint64 // the tokens issued from this code; 0 until used
}

// key is what the store keys codes and tokens by: the SHA-256 of their
// value. The store never holds a code or token itself, so neither does the
// token file (see persist.go): a leaked file is not a set of bearer
// tokens. The distinct type keeps a raw value from indexing the maps.
type key [sha256.Size]byte

func keyOf(v string) key { return sha256.Sum256([]byte(v)) }

// record is an access or a refresh token.
type record struct {
	kind      kind
	grantType string
	clientID  string
	scope     string
	userID    int64
	username  string
	issuedAt  time.Time
	expiresAt time.Time
	// family groups the tokens issued from one grant (one code exchange,
	// one password or client_credentials request) and every rotation of
	// it, so that a replayed code revokes all of them.
	family uint64
	// pair is the key of the other token of the pair: an access token's
	// refresh token, or a refresh token's access token; zero when there is
	// none.
	pair key
	// grantScope is, on a refresh token, the scope originally granted,
	// which bounds the scope of every later refresh.
	grantScope string
}

func (r *record) access() grant.Access {
	return grant.Access{
		ClientID: r.clientID, Scope: r.scope,
		UserID: r.userID, Username: r.username,
		IssuedAt: r.issuedAt, ExpiresAt: r.expiresAt,
	}
}

// store holds codes and tokens in memory, keyed by the hash of their
// value, safe for concurrent use. With a file (persist.go), every change
// is also saved there.
type store struct {
	mu         sync.Mutex
	codes      map[key]*code
	tokens     map[key]*record
	lastFamily uint64
	lastPurge  time.Time
	file       *fileSaver // nil: memory only
}

func newStore() *store {
	return &store{codes: map[key]*code{}, tokens: map[key]*record{}}
}

// changedLocked notes that the store changed, for the file saver.
func (s *store) changedLocked() {
	if s.file != nil {
		s.file.changedLocked()
	}
}

// size returns how many codes and tokens the store holds, expired or not.
func (s *store) size() (codes, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.codes), len(s.tokens)
}

// newSecret returns 32 random bytes, base64url-encoded without padding.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never returns an error; crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// purgeLocked drops expired codes and tokens, at most once per purgeEvery.
func (s *store) purgeLocked(now time.Time) {
	if now.Sub(s.lastPurge) < purgeEvery && !now.Before(s.lastPurge) {
		return
	}
	s.lastPurge = now
	n := len(s.codes) + len(s.tokens)
	for k, c := range s.codes {
		if !now.Before(c.expiresAt) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.tokens {
		if !now.Before(t.expiresAt) {
			delete(s.tokens, k)
		}
	}
	if len(s.codes)+len(s.tokens) != n {
		s.changedLocked()
	}
}

func (s *store) addCode(now time.Time, c *code) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(now)
	v := newSecret()
	s.codes[keyOf(v)] = c
	s.changedLocked()
	return v
}

// codeLocked returns the code v, expired or not.
func (s *store) codeLocked(v string) (*code, bool) {
	c, ok := s.codes[keyOf(v)]
	return c, ok
}

// deleteCodeLocked forgets the code v.
func (s *store) deleteCodeLocked(v string) {
	delete(s.codes, keyOf(v))
	s.changedLocked()
}

// tokenLocked returns the token v, of either kind, expired or not.
func (s *store) tokenLocked(v string) (*record, bool) {
	t, ok := s.tokens[keyOf(v)]
	return t, ok
}

// lookupLocked returns the live token v, of either kind (a value is
// stored once, so its kind is known from the record), or nil. An expired
// token is dropped.
func (s *store) lookupLocked(now time.Time, v string) *record {
	kv := keyOf(v)
	t, ok := s.tokens[kv]
	if !ok {
		return nil
	}
	if !now.Before(t.expiresAt) {
		delete(s.tokens, kv)
		s.changedLocked()
		return nil
	}
	return t
}

// lookup returns a copy of the live token v, of either kind.
func (s *store) lookup(now time.Time, v string) (record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupLocked(now, v)
	if t == nil {
		return record{}, false
	}
	return *t, true
}

// issueLocked stores an access token made from tmpl and, when withRefresh,
// a refresh token paired with it. refreshTTL applies to the refresh token.
func (s *store) issueLocked(now time.Time, tmpl record, accessTTL, refreshTTL time.Duration, withRefresh bool) (access, refresh string) {
	s.purgeLocked(now)
	a := tmpl
	a.kind = kindAccess
	a.issuedAt, a.expiresAt = now, now.Add(accessTTL)
	a.grantScope = ""
	a.pair = key{}
	access = newSecret()
	ak := keyOf(access)
	if withRefresh {
		r := tmpl
		r.kind = kindRefresh
		r.issuedAt, r.expiresAt = now, now.Add(refreshTTL)
		if r.grantScope == "" {
			r.grantScope = r.scope
		}
		refresh = newSecret()
		rk := keyOf(refresh)
		r.pair, a.pair = ak, rk
		s.tokens[rk] = &r
	}
	s.tokens[ak] = &a
	s.changedLocked()
	return access, refresh
}

func (s *store) newFamilyLocked() uint64 {
	s.lastFamily++
	s.changedLocked()
	return s.lastFamily
}

// revokeLocked deletes token v and, for a refresh token, its access token.
// It returns how many tokens it deleted.
func (s *store) revokeLocked(v string) int {
	kv := keyOf(v)
	t, ok := s.tokens[kv]
	if !ok {
		return 0
	}
	delete(s.tokens, kv)
	n := 1
	if t.kind == kindRefresh && t.pair != (key{}) {
		if _, ok := s.tokens[t.pair]; ok {
			delete(s.tokens, t.pair)
			n++
		}
	}
	s.changedLocked()
	return n
}

// revokeFamilyLocked deletes every token of a family.
func (s *store) revokeFamilyLocked(family uint64) int {
	if family == 0 {
		return 0
	}
	n := 0
	for k, t := range s.tokens {
		if t.family == family {
			delete(s.tokens, k)
			n++
		}
	}
	if n > 0 {
		s.changedLocked()
	}
	return n
}

// revokeUser deletes every token of the user and the codes issued to them.
func (s *store) revokeUser(userID int64) int {
	return s.revokeWhere(func(clientID string, uid int64) bool { return uid == userID })
}

// revokeClient deletes every token and code issued to the client.
func (s *store) revokeClient(id string) int {
	return s.revokeWhere(func(clientID string, uid int64) bool { return clientID == id })
}

// revokeWhere deletes the codes and tokens whose client and user match,
// and returns how many tokens it deleted.
func (s *store) revokeWhere(match func(clientID string, userID int64) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := len(s.codes)
	for k, c := range s.codes {
		if match(c.req.ClientID, c.req.UserID) {
			delete(s.codes, k)
		}
	}
	n := 0
	for k, t := range s.tokens {
		if match(t.clientID, t.userID) {
			delete(s.tokens, k)
			n++
		}
	}
	if n > 0 || len(s.codes) != codes {
		s.changedLocked()
	}
	return n
}

// revokeAll deletes every code and token.
func (s *store) revokeAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.tokens)
	s.tokens = map[key]*record{}
	s.codes = map[key]*code{}
	s.changedLocked()
	return n
}

// list returns a copy of every live token.
func (s *store) list(now time.Time) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]record, 0, len(s.tokens))
	for _, t := range s.tokens {
		if now.Before(t.expiresAt) {
			out = append(out, *t)
		}
	}
	return out
}
