package authorize

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// page names a template of templates/, each rendered inside layout.html.
type page string

const (
	pageLogin   page = "login.html"
	pageConsent page = "consent.html"
	pageError   page = "error.html"
)

// pageData is what every page may show.
type pageData struct {
	Title      string
	Nonce      string // CSP nonce of the inline style sheet
	ClientName string
	Error      string // shown in the error box
	Message    string // the error page's explanation
	Action     string // the form's action URL
	CSRF       string
	Username   string
	Scopes     []scopeInfo
	Link       string // the error page's way out
	LinkText   string
}

type scopeInfo struct {
	Name        string
	Description string
}

var scopeDescriptions = map[string]string{
	"read":          "See your profile: username, name, email address and avatar.",
	"write":         "Change data on your behalf.",
	"introspection": "Check whether access tokens are valid.",
}

func describeScopes(scopes []string) []scopeInfo {
	out := make([]scopeInfo, 0, len(scopes))
	for _, s := range scopes {
		d, ok := scopeDescriptions[s]
		if !ok {
			d = "Use the permission " + s + "."
		}
		out = append(out, scopeInfo{Name: s, Description: d})
	}
	return out
}

func parseTemplates() (map[page]*template.Template, error) {
	out := map[page]*template.Template{}
	for _, p := range []page{pageLogin, pageConsent, pageError} {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+string(p))
		if err != nil {
			return nil, fmt.Errorf("authorize: parse %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// render writes an HTML page with the security headers. formOrigin, when
// not empty, is the client origin a form on the page may end up
// redirecting to: Chromium applies form-action to the redirects that
// follow a form submission.
func (s *Server) render(w http.ResponseWriter, status int, p page, formOrigin string, d pageData) {
	d.Nonce = randomToken()
	var buf bytes.Buffer
	if err := s.pages[p].ExecuteTemplate(&buf, "layout", d); err != nil {
		s.log.Error("render page", "page", string(p), "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	formAction := "'none'" // the error page has no form
	if p != pageError {
		formAction = strings.TrimSpace("'self' " + formOrigin)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+d.Nonce+"'; img-src 'self' data:; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	setCommonHeaders(h)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// setCommonHeaders sets the headers of every response of this package,
// pages and redirects alike.
func setCommonHeaders(h http.Header) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// errorPage shows msg on an HTML page; link, when set, offers a way on.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg, link, linkText string) {
	s.render(w, status, pageError, "", pageData{Title: title, Message: msg, Link: link, LinkText: linkText})
}
