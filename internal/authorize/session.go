package authorize

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// CookieName is the name of the browser session cookie. It is not Django's
// sessionid or csrftoken: clients on the same host use those, and browsers
// ignore the port when they match cookies.
const CookieName = "ircam_auth_session"

const (
	// anonTTL bounds the life of a session that only carries the login
	// form's CSRF token.
	anonTTL = time.Hour
	// maxSessions bounds the memory the store may hold; past it, expired
	// sessions are purged and then anonymous ones dropped.
	maxSessions = 100_000
	// purgeEvery is how often inserts sweep expired sessions.
	purgeEvery = time.Minute
	// tokenBytes is the entropy of session ids and CSRF tokens.
	tokenBytes = 32
)

// session is one browser's state at the server. A session with an empty
// Username is anonymous: it exists to bind the login form's CSRF token.
type session struct {
	userID    int64
	username  string
	csrf      string
	expires   time.Time
	approvals map[string][]string // client_id → scopes approved in this session
}

func (s *session) loggedIn() bool { return s.username != "" }

// approved reports whether the session approved every one of scopes for
// the client.
func (s *session) approved(clientID string, scopes []string) bool {
	got, ok := s.approvals[clientID]
	if !ok {
		return false
	}
	for _, sc := range scopes {
		if !slices.Contains(got, sc) {
			return false
		}
	}
	return true
}

// checkCSRF compares token with the session's in constant time.
func (s *session) checkCSRF(token string) bool {
	return s.csrf != "" && subtle.ConstantTimeCompare([]byte(s.csrf), []byte(token)) == 1
}

// sessionStore holds the sessions in memory, keyed by a hash of the cookie
// value so that the map never holds a usable cookie.
type sessionStore struct {
	now       func() time.Time
	ttl       time.Duration
	mu        sync.Mutex
	byKey     map[[sha256.Size]byte]*session
	lastPurge time.Time
}

func newSessionStore(now func() time.Time, ttl time.Duration) *sessionStore {
	return &sessionStore{now: now, ttl: ttl, byKey: make(map[[sha256.Size]byte]*session)}
}

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// randomToken returns tokenBytes random bytes, base64url without padding:
// session ids, CSRF tokens and CSP nonces.
func randomToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never returns an error; crashes the program if the OS can't give randomness
	return base64.RawURLEncoding.EncodeToString(b)
}

// validID reports whether id has the shape of an id we issued, so that
// junk cookies are not even hashed.
func validID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// get returns a copy of the live session with that id.
func (st *sessionStore) get(id string) (session, bool) {
	if !validID(id) {
		return session{}, false
	}
	k := sessionKey(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byKey[k]
	if !ok {
		return session{}, false
	}
	if !st.now().Before(s.expires) {
		delete(st.byKey, k)
		return session{}, false
	}
	cp := *s
	cp.approvals = make(map[string][]string, len(s.approvals))
	for c, sc := range s.approvals {
		cp.approvals[c] = slices.Clone(sc)
	}
	return cp, true
}

// lifetime is how long a session of username lasts: an anonymous one
// (username "") at most anonTTL.
func (st *sessionStore) lifetime(username string) time.Duration {
	if username == "" {
		return min(st.ttl, anonTTL)
	}
	return st.ttl
}

// create stores a new session and returns its id. An empty username makes
// an anonymous session with a shorter life.
func (st *sessionStore) create(userID int64, username string) (string, session) {
	id := randomToken()
	now := st.now()
	s := &session{userID: userID, username: username, csrf: randomToken(),
		expires: now.Add(st.lifetime(username)), approvals: map[string][]string{}}
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.lastPurge) >= purgeEvery || len(st.byKey) >= maxSessions {
		st.purgeLocked(now)
	}
	st.byKey[sessionKey(id)] = s
	return id, *s
}

// purgeLocked drops expired sessions and, when the store is still full,
// anonymous ones.
func (st *sessionStore) purgeLocked(now time.Time) {
	st.lastPurge = now
	for k, s := range st.byKey {
		if !now.Before(s.expires) {
			delete(st.byKey, k)
		}
	}
	if len(st.byKey) < maxSessions {
		return
	}
	for k, s := range st.byKey {
		if !s.loggedIn() {
			delete(st.byKey, k)
		}
	}
}

// delete ends the session with that id, if any.
func (st *sessionStore) delete(id string) {
	if !validID(id) {
		return
	}
	st.mu.Lock()
	delete(st.byKey, sessionKey(id))
	st.mu.Unlock()
}

// approve records that the session approved scopes for the client.
func (st *sessionStore) approve(id, clientID string, scopes []string) {
	if !validID(id) {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byKey[sessionKey(id)]
	if !ok {
		return
	}
	got := s.approvals[clientID]
	for _, sc := range scopes {
		if !slices.Contains(got, sc) {
			got = append(got, sc)
		}
	}
	s.approvals[clientID] = got
}

// len reports how many sessions are stored, for tests.
func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byKey)
}

// sessionCookie returns the cookie carrying id. secure is set when the
// request came over TLS or the public URL is https.
func sessionCookie(id string, maxAge time.Duration, secure bool) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    id,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// expiredCookie returns the cookie that makes the browser forget the session.
func expiredCookie(secure bool) *http.Cookie {
	c := sessionCookie("", 0, secure)
	c.MaxAge = -1
	return c
}
