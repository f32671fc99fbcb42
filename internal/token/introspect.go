package token

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ircam/ircam-auth/internal/clients"
	"github.com/ircam/ircam-auth/internal/httplog"
)

// IntrospectionScope is the scope a Bearer token needs to call
// /o/introspect/ in place of client credentials.
const IntrospectionScope = "introspection"

// introspection is the answer of /o/introspect/ (RFC 7662 §2.2).
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
}

// handleIntrospect answers whether a token is active, to a caller that
// authenticates as a client or with an access token of scope
// introspection. Any authenticated caller may introspect any token, as
// resource servers introspect tokens issued to other clients.
func (s *Service) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr == nil && r.Method != http.MethodPost && form.Has("client_secret") {
		oerr = errInvalidRequest("client_secret must not be sent in the query; use HTTP Basic, or POST it in the body")
	}
	var caller string
	if oerr == nil {
		caller, oerr = s.authenticateIntrospection(r, form)
	}
	httplog.Set(r.Context(), "client_id", caller)
	if oerr == nil && form.Get("token") == "" {
		oerr = errInvalidRequest("token is required")
	}
	if oerr != nil {
		s.log.Info("introspection refused", "client_id", caller, "error", oerr.code, "reason", oerr.desc)
		writeError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, s.introspect(form.Get("token"), form.Get("token_type_hint")))
}

// authenticateIntrospection returns the calling client's id.
func (s *Service) authenticateIntrospection(r *http.Request, form url.Values) (string, *oauthError) {
	scheme, cred := authScheme(r)
	if scheme == "bearer" {
		a, err := s.LookupAccess(r.Context(), cred)
		if err != nil {
			return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_token",
				desc:         "the access token is invalid, expired or revoked",
				authenticate: []string{`Bearer realm="` + realm + `", error="invalid_token"`}}
		}
		if !hasScope(a.Scope, IntrospectionScope) {
			return a.ClientID, &oauthError{status: http.StatusForbidden, code: "insufficient_scope",
				desc:         "the access token needs scope " + IntrospectionScope,
				authenticate: []string{`Bearer realm="` + realm + `", error="insufficient_scope", scope="` + IntrospectionScope + `"`}}
		}
		return a.ClientID, nil
	}
	if !hasClientCredentials(r, form) {
		e := errInvalidClient("authenticate as a client (HTTP Basic, or client_id and client_secret in the body) or with a Bearer token of scope " + IntrospectionScope)
		e.authenticate = append(e.authenticate, `Bearer realm="`+realm+`"`)
		return "", e
	}
	c, oerr := s.authenticateClient(r, form)
	if oerr != nil {
		return attemptedClientID(r, form), oerr
	}
	return c.ID, nil
}

// introspect describes token v. The hint only decides which kind is
// looked up first.
func (s *Service) introspect(v, hint string) introspection {
	order := []kind{kindAccess, kindRefresh}
	if hint == "refresh_token" {
		order = []kind{kindRefresh, kindAccess}
	}
	now := s.now()
	for _, k := range order {
		t, ok := s.store.lookup(now, v, k)
		if !ok {
			continue
		}
		out := introspection{
			Active: true, Scope: t.scope, ClientID: t.clientID,
			Exp: t.expiresAt.Unix(), Iat: t.issuedAt.Unix(),
		}
		if k == kindAccess {
			out.TokenType = "Bearer"
		}
		if t.userID != 0 {
			u, ok := s.users.ByID(t.userID)
			if !ok {
				return introspection{} // the user is gone: so is the token
			}
			out.Username, out.Sub = u.Username, strconv.FormatInt(u.ID, 10)
		}
		return out
	}
	return introspection{}
}

// handleRevoke revokes an access or refresh token of the calling client
// (RFC 7009). Unknown tokens and tokens of other clients get the same 200,
// and the latter stay valid. Revoking a refresh token revokes its access
// token; revoking an access token leaves its refresh token.
func (s *Service) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	var c clients.Client
	if oerr == nil {
		c, oerr = s.authenticateClient(r, form)
	}
	if oerr == nil && form.Get("token") == "" {
		oerr = errInvalidRequest("token is required")
	}
	if oerr != nil {
		id := c.ID
		if id == "" {
			id = attemptedClientID(r, form)
		}
		s.log.Info("revocation refused", "client_id", id, "error", oerr.code, "reason", oerr.desc)
		writeError(w, oerr)
		return
	}
	v := form.Get("token")
	st := s.store
	st.mu.Lock()
	t, found := st.tokenLocked(v)
	var kindName, user string
	n := 0
	switch {
	case !found:
	case t.clientID != c.ID:
		kindName, user = t.kind.String(), t.username
	default:
		kindName, user = t.kind.String(), t.username
		n = st.revokeLocked(v)
	}
	st.mu.Unlock()
	switch {
	case !found:
		s.log.Info("revocation of an unknown token", "client_id", c.ID)
	case n == 0:
		s.log.Warn("revocation of another client's token ignored", "client_id", c.ID, "kind", kindName, "user", user)
	default:
		s.log.Info("token revoked", "client_id", c.ID, "kind", kindName, "user", user, "revoked", n)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
