package authorize

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ircam/ircam-auth/internal/clients"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1).
type authRequest struct {
	client         clients.Client
	redirectURI    string // the registered URI the browser goes back to
	rawRedirectURI string // as the client sent it; "" when absent
	state          string
	scope          string   // normalized, space-separated
	scopes         []string // the same, split
	codeChallenge  string
	challengeMeth  string
	loginHint      string
	query          url.Values // the whole request, to carry through the forms
}

// badRequest is an error shown as an HTML 400 page at the server: the
// request cannot be trusted to redirect anywhere (RFC 6749 §4.1.2.1).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// redirectError is an error sent back to the client at its redirect URI
// (RFC 6749 §4.1.2.1), with error_description and state.
type redirectError struct {
	code string
	desc string
}

func (e *redirectError) Error() string { return e.code + ": " + e.desc }

// oauthParams are the parameters that may appear at most once (RFC 6749 §3.1).
var oauthParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method", "login_hint",
}

// pkceChallenge is the syntax of a code challenge (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

// parseRequest validates an authorization request given as a raw query.
// It returns a *badRequest while the client or its redirect URI is not
// established, and afterwards a *redirectError along with the request,
// whose redirectURI and state are set.
func (s *Server) parseRequest(rawQuery string) (*authRequest, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, &badRequest{"The authorization request is malformed: its query string cannot be parsed."}
	}
	if len(q["client_id"]) > 1 {
		return nil, &badRequest{"The authorization request repeats the client_id parameter."}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, &badRequest{"The authorization request has no client_id parameter."}
	}
	c, ok := s.clients.Lookup(clientID)
	if !ok {
		return nil, &badRequest{"The application asking you to sign in is not registered here (unknown client_id)."}
	}
	if len(q["redirect_uri"]) > 1 {
		return nil, &badRequest{"The authorization request repeats the redirect_uri parameter."}
	}
	raw := q.Get("redirect_uri")
	redirect, ok := c.RedirectURI(raw)
	if !ok {
		msg := "The redirect_uri does not match any address registered for " + c.Name + "."
		if raw == "" {
			msg = "The authorization request has no redirect_uri, and " + c.Name + " has more than one registered."
		}
		return nil, &badRequest{msg}
	}
	req := &authRequest{
		client: c, redirectURI: redirect, rawRedirectURI: raw,
		state: q.Get("state"), loginHint: q.Get("login_hint"), query: q,
	}

	// From here on, errors go back to the client.
	for _, p := range oauthParams {
		if len(q[p]) > 1 {
			return req, &redirectError{"invalid_request", "parameter " + p + " is repeated"}
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return req, &redirectError{"invalid_request", "response_type is missing"}
	default:
		return req, &redirectError{"unsupported_response_type", "only response_type=code is supported"}
	}

	req.scopes = splitScope(q.Get("scope"))
	if len(req.scopes) == 0 {
		req.scopes = []string{clients.DefaultScope}
	}
	req.scope = strings.Join(req.scopes, " ")
	if !c.AllowsScope(req.scope) {
		return req, &redirectError{"invalid_scope", "the client may not ask for scope " + req.scope}
	}

	req.codeChallenge = q.Get("code_challenge")
	req.challengeMeth = q.Get("code_challenge_method")
	switch {
	case req.codeChallenge == "" && req.challengeMeth != "":
		return req, &redirectError{"invalid_request", "code_challenge_method without code_challenge"}
	case req.codeChallenge == "" && s.pkceRequired:
		return req, &redirectError{"invalid_request", "code_challenge is required (PKCE)"}
	case req.codeChallenge == "":
	case !pkceChallenge.MatchString(req.codeChallenge):
		return req, &redirectError{"invalid_request", "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]"}
	case req.challengeMeth == "":
		req.challengeMeth = "plain" // RFC 7636 §4.3
	case req.challengeMeth != "S256" && req.challengeMeth != "plain":
		return req, &redirectError{"invalid_request", "code_challenge_method must be S256 or plain"}
	}
	return req, nil
}

// splitScope splits a space-separated scope, dropping duplicates.
func splitScope(scope string) []string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// clientRedirect returns the redirect URI with params added to its query,
// keeping the query it already has as it is.
func clientRedirect(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs are checked when the fixtures load; this is a
		// last resort that still keeps the parameters.
		return redirectURI
	}
	extra := params.Encode()
	if u.RawQuery == "" {
		u.RawQuery = extra
	} else if extra != "" {
		u.RawQuery += "&" + extra
	}
	return u.String()
}

// redirectOrigin returns the origin of a redirect URI, for the CSP, or ""
// when it has no http(s) origin or one unfit for a header.
func redirectOrigin(redirectURI string) string {
	o, ok := clients.Origin(redirectURI)
	if !ok || !cspSource.MatchString(o) {
		return ""
	}
	return o
}

// cspSource is an http(s) origin that may stand in a CSP header as it is.
var cspSource = regexp.MustCompile(`^https?://[a-z0-9.\-:\[\]]+$`)
