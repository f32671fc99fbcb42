package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/ircam/ircam-auth/internal/clients"
)

// maxBodyBytes bounds every request body of the endpoints.
const maxBodyBytes = 64 << 10

const realm = "ircam-auth"

// oauthError is an error answer of RFC 6749 §5.2 (and RFC 7009, RFC 7662).
type oauthError struct {
	status int
	code   string
	desc   string
	// authenticate is the WWW-Authenticate header of a 401 or 403, if any.
	authenticate []string
	// logAttrs are added to the log line of the refusal (never a secret);
	// level is its level, Info when zero.
	logAttrs []any
	level    slog.Level
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

func errInvalidClient(desc string) *oauthError {
	return &oauthError{
		status: http.StatusUnauthorized, code: "invalid_client", desc: desc,
		authenticate: []string{`Basic realm="` + realm + `"`},
	}
}

// setNoStore marks a response as not cacheable (RFC 6749 §5.1).
func setNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// WriteJSON writes v as the JSON body of a no-store response: the answers
// of these endpoints, and of the server's other JSON endpoints (admin).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	setNoStore(h)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes a JSON error answer in the shape of RFC 6749 §5.2:
// {"error": code, "error_description": desc}, the latter when not empty.
func WriteError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	WriteJSON(w, status, body)
}

// writeError writes e as a JSON error answer.
func writeError(w http.ResponseWriter, e *oauthError) {
	for _, a := range e.authenticate {
		w.Header().Add("WWW-Authenticate", a)
	}
	WriteError(w, e.status, e.code, e.desc)
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, &oauthError{
			status: http.StatusMethodNotAllowed, code: "invalid_request",
			desc: "method " + r.Method + " is not allowed; use " + allow,
		})
	}
}

// readForm returns the parameters of a POST form body, or, for GET, of
// the query. The body is bounded, and a parameter given twice is refused
// (RFC 6749 §3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	var form url.Values
	if r.Method == http.MethodPost {
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/x-www-form-urlencoded" {
			return nil, errInvalidRequest("the request body must be application/x-www-form-urlencoded")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, &oauthError{
					status: http.StatusRequestEntityTooLarge, code: "invalid_request",
					desc: "the request body is too large",
				}
			}
			return nil, errInvalidRequest("the request body is not a valid form")
		}
		form = r.PostForm
	} else {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, errInvalidRequest("the query string is not valid")
		}
		form = q
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, errInvalidRequest("parameter " + strconvQuote(k) + " is repeated")
		}
	}
	return form, nil
}

// strconvQuote quotes a parameter name for a message, cut short so that a
// hostile name cannot flood the answer.
func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// authScheme splits an Authorization header into its scheme (lower case)
// and credentials.
func authScheme(r *http.Request) (scheme, cred string) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", ""
	}
	scheme, cred, _ = strings.Cut(h, " ")
	return strings.ToLower(scheme), strings.TrimSpace(cred)
}

// basicCredentials decodes HTTP Basic credentials; client id and secret
// are form-urlencoded inside (RFC 6749 §2.3.1). A value that does not
// decode is taken as it is, for clients that do not encode.
func basicCredentials(cred string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if v, err := url.QueryUnescape(id); err == nil {
		id = v
	}
	if v, err := url.QueryUnescape(secret); err == nil {
		secret = v
	}
	return id, secret, true
}

// hasClientCredentials reports whether the request carries client
// credentials of either kind.
func hasClientCredentials(r *http.Request, form url.Values) bool {
	scheme, _ := authScheme(r)
	return scheme == "basic" || form.Has("client_id") || form.Has("client_secret")
}

// authenticateClient authenticates the client by HTTP Basic or by
// client_id and client_secret in the form, not both.
func (s *Service) authenticateClient(r *http.Request, form url.Values) (clients.Client, *oauthError) {
	var id, secret string
	scheme, cred := authScheme(r)
	switch {
	case scheme == "basic":
		var ok bool
		id, secret, ok = basicCredentials(cred)
		if !ok {
			return clients.Client{}, errInvalidClient("malformed HTTP Basic credentials")
		}
		if form.Has("client_secret") || (form.Has("client_id") && form.Get("client_id") != id) {
			return clients.Client{}, errInvalidRequest("client credentials given both in the Authorization header and in the body; use one")
		}
	case form.Has("client_id"):
		id, secret = form.Get("client_id"), form.Get("client_secret")
		if secret == "" {
			return clients.Client{}, errInvalidClient("client_secret is required")
		}
	default:
		return clients.Client{}, errInvalidClient("client authentication is required (HTTP Basic, or client_id and client_secret in the body)")
	}
	c, ok := s.clients.Authenticate(id, secret)
	if !ok {
		return clients.Client{}, errInvalidClient("unknown client or wrong client secret")
	}
	return c, nil
}

// logClientID returns the client id for logs: the authenticated client's,
// or, when client authentication failed, the id the request claims.
func logClientID(c clients.Client, r *http.Request, form url.Values) string {
	if c.ID != "" {
		return c.ID
	}
	id := form.Get("client_id")
	if scheme, cred := authScheme(r); scheme == "basic" {
		id, _, _ = basicCredentials(cred)
	}
	if len(id) > 128 {
		id = id[:128] + "..."
	}
	return id
}
