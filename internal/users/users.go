// Package users holds the users of ircam-auth and decides how a password is
// checked: the user's local bcrypt password when there is one, and only
// otherwise an LDAP bind. A user first seen through LDAP is added to the
// store with a stable id.
package users

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"golang.org/x/crypto/bcrypt"
)

var (
	// ErrInvalidCredentials is the one answer for an unknown user, a wrong
	// password and an empty password: callers cannot tell them apart.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrDirectoryUnavailable means the user has no local password and the
	// directory could not be asked. It is not a wrong password.
	ErrDirectoryUnavailable = errors.New("the user directory is unavailable")
)

// User is a user as the profile endpoint shows it.
type User struct {
	ID           int64
	Username     string
	Email        string
	FirstName    string
	LastName     string
	Avatar       string
	PasswordHash string // bcrypt; empty for a directory user
}

// IsLDAPUser reports whether the user logs in through the directory,
// which is exactly when there is no local password.
func (u User) IsLDAPUser() bool { return u.PasswordHash == "" }

// Method names how a login was checked, for logs.
type Method string

const (
	MethodLocal Method = "local"
	MethodLDAP  Method = "ldap"
)

// Directory checks a password against LDAP; *ldapbind.Client is one.
type Directory interface {
	Authenticate(ctx context.Context, username, password string) (ldapbind.Entry, error)
}

// Store is the set of users, safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	byName map[string]*User // lower-case username
	byID   map[int64]*User
	seeded map[int64]bool // ids that come from the fixtures
	dir    Directory      // nil: no directory, local users only
	// dummyHash is compared against when a refusal would otherwise come
	// without a bcrypt comparison, so that it takes as long as a wrong
	// password. NewStore makes it in the background (at the default cost
	// that takes as long as a login, and the server need not wait for it
	// to start): read it, and bcryptNanos, once dummyReady is closed.
	dummyHash  []byte
	dummyReady chan struct{}
	// bcryptNanos estimates how long one comparison against dummyHash
	// takes on this machine: measured at start, refined at every use.
	bcryptNanos atomic.Int64
}

// NewStore returns a store seeded with the fixture users. dir may be nil.
func NewStore(seed []fixtures.User, dir Directory, bcryptCost int) (*Store, error) {
	if bcryptCost == 0 {
		bcryptCost = fixtures.DefaultBcryptCost
	}
	if bcryptCost < bcrypt.MinCost || bcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("users: bcrypt cost %d out of range [%d, %d]", bcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	s := &Store{dir: dir, dummyReady: make(chan struct{})}
	go func() {
		start := time.Now()
		// The cost is in range, so GenerateFromPassword cannot fail.
		s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("ircam-auth dummy password"), bcryptCost)
		// Hashing takes as long as comparing: the first estimate is free.
		s.bcryptNanos.Store(int64(time.Since(start)))
		close(s.dummyReady)
	}()
	s.byName, s.byID, s.seeded = index(seed)
	return s, nil
}

func index(seed []fixtures.User) (map[string]*User, map[int64]*User, map[int64]bool) {
	byName := make(map[string]*User, len(seed))
	byID := make(map[int64]*User, len(seed))
	seeded := make(map[int64]bool, len(seed))
	for _, f := range seed {
		u := &User{
			ID: f.ID, Username: f.Username, Email: f.Email,
			FirstName: f.FirstName, LastName: f.LastName, Avatar: f.Avatar,
			PasswordHash: f.PasswordHash,
		}
		byName[strings.ToLower(u.Username)] = u
		byID[u.ID] = u
		seeded[u.ID] = true
	}
	return byName, byID, seeded
}

// Replace swaps in reloaded fixture users and directory. Users first seen
// through LDAP stay, unless the new fixtures use their name or id.
func (s *Store) Replace(seed []fixtures.User, dir Directory) {
	byName, byID, seeded := index(seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, u := range s.byID {
		if s.seeded[id] {
			continue
		}
		if _, taken := byID[id]; taken {
			continue
		}
		if _, taken := byName[strings.ToLower(u.Username)]; taken {
			continue
		}
		byName[strings.ToLower(u.Username)] = u
		byID[id] = u
	}
	s.byName, s.byID, s.seeded, s.dir = byName, byID, seeded, dir
}

// Put adds a user or replaces the user with the same id. A different user
// with the same username (case-insensitively) is an error.
func (s *Store) Put(u User) error {
	if u.ID <= 0 || u.Username == "" {
		return errors.New("users: a user needs a positive id and a username")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(u.Username)
	if other, ok := s.byName[key]; ok && other.ID != u.ID {
		return fmt.Errorf("users: username %q is taken by id %d", u.Username, other.ID)
	}
	if old, ok := s.byID[u.ID]; ok {
		delete(s.byName, strings.ToLower(old.Username))
	}
	s.byName[key] = &u
	s.byID[u.ID] = &u
	return nil
}

// Remove deletes the user with the id and reports whether there was one.
func (s *Store) Remove(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return false
	}
	delete(s.byID, id)
	delete(s.byName, strings.ToLower(u.Username))
	delete(s.seeded, id)
	return true
}

// Lookup finds a user by username, case-insensitively.
func (s *Store) Lookup(username string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.byName[strings.ToLower(username)]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// ByID finds a user by id.
func (s *Store) ByID(id int64) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.byID[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// All returns every user, by id.
func (s *Store) All() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.byID))
	for _, u := range s.byID {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Authenticate checks username and password: the local bcrypt password
// when the user has one, and otherwise, or when the user is not in the
// store, an LDAP bind. It returns the user and the method that checked
// the password, or ErrInvalidCredentials or ErrDirectoryUnavailable.
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, Method, error) {
	u, known := s.Lookup(username)
	if known && !u.IsLDAPUser() {
		// A user with a local password is never checked against LDAP.
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil || password == "" {
			return User{}, MethodLocal, ErrInvalidCredentials
		}
		return u, MethodLocal, nil
	}
	s.mu.RLock()
	dir := s.dir
	s.mu.RUnlock()
	if password == "" || username == "" || dir == nil {
		// Refused before any LDAP call (an empty password is an anonymous
		// bind), in the time of a wrong password.
		s.spendBcrypt(password)
		return User{}, MethodLDAP, ErrInvalidCredentials
	}
	name := username
	if known {
		name = u.Username // the directory sees the fixture's spelling
	}
	start := time.Now()
	entry, err := dir.Authenticate(ctx, name, password)
	switch {
	case errors.Is(err, ldapbind.ErrInvalidCredentials):
		// A directory refuses a name it does not know (search finds no
		// entry, or a bind to a DN that does not exist) without checking
		// any password: much faster than a wrong password, which costs it
		// a hash comparison, and faster than a local user's bcrypt. A
		// refusal that came faster than half a bcrypt is given one, so
		// that unknown users, wrong directory passwords and wrong local
		// passwords take about the same time.
		if time.Since(start) < s.bcryptDuration()/2 {
			s.spendBcrypt(password)
		}
		return User{}, MethodLDAP, ErrInvalidCredentials
	case err != nil: // ldapbind.ErrUnavailable, or anything unforeseen
		return User{}, MethodLDAP, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	return s.fromDirectory(name, entry), MethodLDAP, nil
}

// spendBcrypt takes the time of one bcrypt comparison, so that refusing
// without asking anyone takes as long as refusing a wrong password.
func (s *Store) spendBcrypt(password string) {
	<-s.dummyReady
	start := time.Now()
	_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
	d := int64(time.Since(start))
	// A moving average: one slow comparison (a busy machine) moves the
	// estimate by a quarter only. Concurrent updates may lose one; an
	// estimate is all this needs.
	old := s.bcryptNanos.Load()
	s.bcryptNanos.Store(old + (d-old)/4)
}

// bcryptDuration is the estimated time of one dummy bcrypt comparison.
func (s *Store) bcryptDuration() time.Duration {
	<-s.dummyReady
	return time.Duration(s.bcryptNanos.Load())
}

// fromDirectory refreshes (or creates) the user from the directory's
// answer, as django-auth-ldap does at every login: the directory's values
// win, the fixtures' values stay where the directory has none.
func (s *Store) fromDirectory(username string, e ldapbind.Entry) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(username)
	u, ok := s.byName[key]
	if !ok {
		u = &User{Username: username, ID: s.newID(username, e.UIDNumber)}
		s.byName[key] = u
		s.byID[u.ID] = u
	}
	if e.Mail != "" {
		u.Email = e.Mail
	}
	if e.GivenName != "" {
		u.FirstName = e.GivenName
	}
	if e.SN != "" {
		u.LastName = e.SN
	}
	return *u
}

// newID gives a user first seen through LDAP an id that is the same on
// every run with the same fixtures and directory: the uidNumber when it is
// free, otherwise a number derived from the username, above every uid.
func (s *Store) newID(username string, uidNumber int64) int64 {
	if uidNumber > 0 {
		if _, taken := s.byID[uidNumber]; !taken {
			return uidNumber
		}
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(username)))
	// JSON numbers are exact up to 2^53: stay within [2^40, 2^52).
	id := int64(1<<40 + h.Sum64()%(1<<52-1<<40))
	for {
		if _, taken := s.byID[id]; !taken {
			return id
		}
		id++
	}
}
