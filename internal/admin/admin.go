// Package admin serves the test-control endpoints a CI job uses to set up
// a case without restarting the server: add, update and remove users,
// list and revoke tokens. They are off unless an admin token is
// configured, and every request must carry it as a Bearer token.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ircam/ircam-auth/internal/token"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

// userStore is what the endpoints need of the users; *users.Store is one.
type userStore interface {
	Lookup(username string) (users.User, bool)
	ByID(id int64) (users.User, bool)
	All() []users.User
	Put(u users.User) error
	Remove(id int64) bool
}

// tokenStore is what they need of the tokens; *token.Service is one.
type tokenStore interface {
	RevokeUser(userID int64) int
	RevokeAll() int
	List() []token.Info
}

// Config holds the dependencies of the endpoints.
type Config struct {
	Token      string // required: the Bearer token of every request
	Users      userStore
	Tokens     tokenStore
	BcryptCost int
	Logger     *slog.Logger
}

// Server serves /admin/.
type Server struct {
	cfg       Config
	tokenHash [sha256.Size]byte
}

// New returns the admin endpoints.
func New(cfg Config) (*Server, error) {
	if len(cfg.Token) < 16 {
		return nil, errors.New("admin: the admin token must be at least 16 characters")
	}
	if cfg.Users == nil || cfg.Tokens == nil {
		return nil, errors.New("admin: Users and Tokens are required")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token))}, nil
}

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("GET /admin/users/{$}", s.guard(s.listUsers))
	mux.Handle("PUT /admin/users/{username}", s.guard(s.putUser))
	mux.Handle("DELETE /admin/users/{username}", s.guard(s.deleteUser))
	mux.Handle("GET /admin/tokens/{$}", s.guard(s.listTokens))
	mux.Handle("POST /admin/tokens/revoke-all", s.guard(s.revokeAll))
}

// guard refuses requests without the admin token, compared in constant
// time (of the hashes, so the length does not leak either).
func (s *Server) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(tok))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ircam-auth admin"`)
			token.WriteError(w, http.StatusUnauthorized, "unauthorized", "the admin endpoints need Authorization: Bearer <admin token>")
			return
		}
		h(w, r)
	})
}

// userJSON is a user as the admin endpoints read and write it.
type userJSON struct {
	ID           int64  `json:"id"`
	Username     string `json:"username"`
	Email        string `json:"email"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Avatar       string `json:"avatar"`
	Password     string `json:"password,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
	IsLDAPUser   bool   `json:"is_ldap_user"`
}

func fromUser(u users.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName,
		LastName: u.LastName, Avatar: u.Avatar, IsLDAPUser: u.IsLDAPUser()}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	out := []userJSON{}
	for _, u := range s.cfg.Users.All() {
		out = append(out, fromUser(u))
	}
	token.WriteJSON(w, http.StatusOK, out)
}

// putUser adds the user named in the path, or updates it. The body gives
// the profile and either password (hashed here), password_hash, or
// neither (a directory user). Without an id, an existing user keeps its id.
func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	var in userJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		token.WriteError(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON user: "+err.Error())
		return
	}
	if in.Username != "" && in.Username != name {
		token.WriteError(w, http.StatusBadRequest, "invalid_request", "username in the body differs from the path")
		return
	}
	if in.Password != "" && in.PasswordHash != "" {
		token.WriteError(w, http.StatusBadRequest, "invalid_request", "give password or password_hash, not both")
		return
	}
	old, exists := s.cfg.Users.Lookup(name)
	if exists {
		name = old.Username // the stored spelling stays
		if in.ID == 0 {
			in.ID = old.ID
		}
	}
	if in.ID <= 0 {
		token.WriteError(w, http.StatusBadRequest, "invalid_request", "a new user needs a positive id")
		return
	}
	if other, taken := s.cfg.Users.ByID(in.ID); taken && (!exists || other.ID != old.ID) {
		token.WriteError(w, http.StatusConflict, "conflict", fmt.Sprintf("id %d is %q's", in.ID, other.Username))
		return
	}
	hash := in.PasswordHash
	if hash != "" {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			token.WriteError(w, http.StatusBadRequest, "invalid_request", "password_hash is not a bcrypt hash")
			return
		}
	}
	if in.Password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cfg.BcryptCost)
		if err != nil {
			token.WriteError(w, http.StatusBadRequest, "invalid_request", "password: "+err.Error())
			return
		}
		hash = string(h)
	}
	u := users.User{ID: in.ID, Username: name, Email: in.Email, FirstName: in.FirstName,
		LastName: in.LastName, Avatar: in.Avatar, PasswordHash: hash}
	renumbered := exists && old.ID != u.ID
	if renumbered {
		// The store keeps a name on one id: the old entry goes first.
		s.cfg.Users.Remove(old.ID)
	}
	if err := s.cfg.Users.Put(u); err != nil {
		if renumbered {
			s.cfg.Users.Put(old)
		}
		token.WriteError(w, http.StatusConflict, "conflict", err.Error())
		return
	}
	// The tokens of the old id go with it: a later user of that id must
	// not inherit them.
	if renumbered {
		s.cfg.Tokens.RevokeUser(old.ID)
	}
	status := http.StatusCreated
	if exists {
		status = http.StatusOK
	}
	s.cfg.Logger.Info("admin: user saved", "user", name, "id", u.ID, "created", !exists)
	token.WriteJSON(w, status, fromUser(u))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	u, ok := s.cfg.Users.Lookup(name)
	if !ok {
		token.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no user %q", name))
		return
	}
	s.cfg.Users.Remove(u.ID)
	n := s.cfg.Tokens.RevokeUser(u.ID)
	s.cfg.Logger.Info("admin: user removed", "user", u.Username, "id", u.ID, "tokens_revoked", n)
	token.WriteJSON(w, http.StatusOK, map[string]any{"removed": u.Username, "tokens_revoked": n})
}

// tokenJSON describes an issued token; the token itself is never shown.
type tokenJSON struct {
	Kind      string    `json:"kind"` // access_token or refresh_token
	GrantType string    `json:"grant_type"`
	ClientID  string    `json:"client_id"`
	Scope     string    `json:"scope"`
	UserID    int64     `json:"user_id,omitempty"`
	Username  string    `json:"username,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	out := []tokenJSON{}
	for _, t := range s.cfg.Tokens.List() {
		out = append(out, tokenJSON{Kind: t.Kind, GrantType: t.GrantType, ClientID: t.ClientID,
			Scope: t.Scope, UserID: t.UserID, Username: t.Username, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt})
	}
	token.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) revokeAll(w http.ResponseWriter, r *http.Request) {
	n := s.cfg.Tokens.RevokeAll()
	s.cfg.Logger.Info("admin: all tokens revoked", "tokens_revoked", n)
	token.WriteJSON(w, http.StatusOK, map[string]any{"tokens_revoked": n})
}
