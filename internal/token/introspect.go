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
	WriteJSON(w, http.StatusOK, s.introspect(form.Get("token")))
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
	return logClientID(c, r, form), oerr
}

// introspect describes token v, of either kind. token_type_hint is not
// needed (RFC 7662 §2.1 lets the server ignore it): one lookup finds the
// token whatever its kind.
func (s *Service) introspect(v string) introspection {
	t, ok := s.store.lookup(s.now(), v)
	if !ok {
		return introspection{}
	}
	out := introspection{
		Active: true, Scope: t.scope, ClientID: t.clientID,
		Exp: t.expiresAt.Unix(), Iat: t.issuedAt.Unix(),
	}
	if t.kind == kindAccess {
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
		s.log.Info("revocation refused", "client_id", logClientID(c, r, form), "error", oerr.code, "reason", oerr.desc)
		writeError(w, oerr)
		return
	}
	v := form.Get("token")
	// One lookup finds a token of either kind, so token_type_hint, when
	// given, has nothing to shorten (RFC 7009 §2.1: the server may search
	// every kind).
	st := s.store
	st.mu.Lock()
	t, found := st.tokenLocked(v)
	var kindName, user string
	n := 0
	if found {
		kindName, user = t.kind.String(), t.username
		if t.clientID == c.ID {
			n = st.revokeLocked(v)
		}
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
	WriteJSON(w, http.StatusOK, struct{}{})
}
