// Package profile serves GET /profile/: the profile of the user an access
// token was issued to, in the JSON the django-allauth "ircamauth" provider
// reads.
package profile

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/ircam/ircam-auth/internal/grant"
	"github.com/ircam/ircam-auth/internal/httplog"
	"github.com/ircam/ircam-auth/internal/users"
)

// RequiredScope is the scope a token needs to read the profile.
const RequiredScope = "read"

const realm = "ircam-auth"

// tokenLookup checks access tokens; *token.Service is one.
type tokenLookup interface {
	LookupAccess(ctx context.Context, token string) (grant.Access, error)
}

// userLookup finds users; *users.Store is one.
type userLookup interface {
	ByID(id int64) (users.User, bool)
}

// Profile is the JSON of /profile/. Field names are fixed by the client.
type Profile struct {
	ID         int64  `json:"id"`
	ExtID      int64  `json:"ext_id"`
	Username   string `json:"username"`
	Email      string `json:"email"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	Avatar     string `json:"avatar"`
	IsLDAPUser bool   `json:"is_ldap_user"`
}

// FromUser returns the profile of u.
func FromUser(u users.User) Profile {
	return Profile{
		ID: u.ID, ExtID: u.ID, Username: u.Username, Email: u.Email,
		FirstName: u.FirstName, LastName: u.LastName, Avatar: u.Avatar,
		IsLDAPUser: u.IsLDAPUser(),
	}
}

type handler struct {
	tokens tokenLookup
	users  userLookup
	log    *slog.Logger
}

// New returns the /profile/ handler. logger may be nil.
func New(tokens tokenLookup, users userLookup, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &handler{tokens: tokens, users: users, log: logger}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method+" is not allowed; use GET", "")
		return
	}
	tok, ok := bearerToken(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_token", "a Bearer access token is required",
			`Bearer realm="`+realm+`", error="invalid_token", error_description="a Bearer access token is required"`)
		return
	}
	a, err := h.tokens.LookupAccess(r.Context(), tok)
	if errors.Is(err, grant.ErrInvalidToken) {
		writeInvalidToken(w)
		return
	}
	if err != nil {
		h.log.Error("profile: token lookup failed", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "the access token could not be checked", "")
		return
	}
	httplog.Set(r.Context(), "client_id", a.ClientID)
	httplog.Set(r.Context(), "user", a.Username)
	// Only refusals are logged here (httplog logs every request), so no
	// Logger.With on the way to a 200.
	refused := func(msg string, args ...any) {
		h.log.Info(msg, append([]any{"client_id", a.ClientID, "user", a.Username}, args...)...)
	}
	if !slices.Contains(strings.Fields(a.Scope), RequiredScope) {
		refused("profile refused: insufficient scope", "scope", a.Scope)
		writeError(w, http.StatusForbidden, "insufficient_scope", "the access token needs scope "+RequiredScope,
			`Bearer realm="`+realm+`", error="insufficient_scope", scope="`+RequiredScope+`"`)
		return
	}
	if a.UserID == 0 {
		refused("profile refused: token has no user")
		writeError(w, http.StatusForbidden, "access_denied",
			"this access token was issued to a client by the client_credentials grant and has no user; /profile/ needs a token issued for a user", "")
		return
	}
	u, ok := h.users.ByID(a.UserID)
	if !ok {
		refused("profile refused: user no longer exists", "user_id", a.UserID)
		writeInvalidToken(w)
		return
	}
	writeJSON(w, http.StatusOK, FromUser(u))
}

// bearerToken returns the token of an "Authorization: Bearer" header; the
// scheme is case-insensitive.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func writeInvalidToken(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked",
		`Bearer realm="`+realm+`", error="invalid_token", error_description="the access token is invalid, expired or revoked"`)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc, authenticate string) {
	if authenticate != "" {
		w.Header().Set("WWW-Authenticate", authenticate)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
