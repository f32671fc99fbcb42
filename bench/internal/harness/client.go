package harness

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The default fixtures' accounts (fixtures/default.yaml).
const (
	MezzoID      = "mezzo"
	MezzoSecret  = "mezzo-secret"
	MezzoRedir   = "http://127.0.0.1:8001/accounts/ircamauth/login/callback/"
	RobotID      = "ci-robot"
	RobotSecret  = "ci-robot-secret"
	LocalUser    = "alice"
	LocalPass    = "alice-pw"
	LDAPUser     = "bob"
	LDAPPassword = "bob-ldap-pw"
)

// newTransport is a keep-alive transport for many concurrent requests to
// one host.
func newTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// Client talks to one server as the OAuth2 clients of the fixtures do.
type Client struct {
	Base string
	HTTP *http.Client // shared keep-alive client for back-channel calls
}

// NewClient returns a client of the server at base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}}
}

// Token is what the bench reads of a token response (RFC 6749 §5.1).
type Token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// TokenRequest posts form to /o/token/ with the client's credentials in
// HTTP Basic, and decodes the token.
func (c *Client) TokenRequest(id, secret string, form url.Values) (Token, error) {
	var t Token
	body, err := c.TokenRequestRaw(id, secret, form)
	if err != nil {
		return t, fmt.Errorf("token (%s): %w", form.Get("grant_type"), err)
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return t, fmt.Errorf("token (%s): no access token in %q", form.Get("grant_type"), body)
	}
	return t, nil
}

// TokenRequestRaw is TokenRequest's answer, undecoded.
func (c *Client) TokenRequestRaw(id, secret string, form url.Values) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, c.Base+"/o/token/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return c.do(req)
}

// PasswordGrant gets a token pair for a user through mezzo.
func (c *Client) PasswordGrant(user, password string) (Token, error) {
	return c.TokenRequest(MezzoID, MezzoSecret, url.Values{
		"grant_type": {"password"}, "username": {user}, "password": {password}, "scope": {"read"},
	})
}

// ClientCredentials gets a token for ci-robot itself.
func (c *Client) ClientCredentials() (Token, error) {
	return c.TokenRequest(RobotID, RobotSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
}

// Refresh rotates a refresh token of mezzo.
func (c *Client) Refresh(refresh string) (Token, error) {
	return c.TokenRequest(MezzoID, MezzoSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

// Profile reads /profile/ with an access token.
func (c *Client) Profile(access string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, c.Base+"/profile/", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	return c.do(req)
}

// Introspect introspects token as ci-robot.
func (c *Client) Introspect(token string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, c.Base+"/o/introspect/", strings.NewReader("token="+url.QueryEscape(token)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(RobotID, RobotSecret)
	return c.do(req)
}

func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}

var (
	formAction = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	csrfInput  = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
)

// AuthCodeFlow logs user in through a new browser (an empty cookie jar),
// as SPEC §1 describes: GET /o/authorize/ (login page), POST the login
// form, GET /o/authorize/ again (consent page), POST Authorize, then the
// client exchanges the code (with PKCE S256) for a token.
func (c *Client) AuthCodeFlow(user, password string) (Token, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{
		Transport: c.HTTP.Transport,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), c.Base) {
				return http.ErrUseLastResponse // the client's callback
			}
			return nil
		},
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	mezzo := oauth2.Config{
		ClientID: MezzoID, RedirectURL: MezzoRedir, Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{AuthURL: c.Base + "/o/authorize/"},
	}
	authURL := mezzo.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	page, pageURL, err := c.browse(browser, http.MethodGet, authURL, nil)
	if err != nil {
		return Token{}, fmt.Errorf("login page: %w", err)
	}
	action, csrf, err := pageForm(pageURL, page)
	if err != nil {
		return Token{}, fmt.Errorf("login page: %w", err)
	}
	page, pageURL, err = c.browse(browser, http.MethodPost, action, url.Values{
		"csrf_token": {csrf}, "username": {user}, "password": {password},
	})
	if err != nil {
		return Token{}, fmt.Errorf("login: %w", err)
	}
	if !strings.Contains(page, `name="allow"`) {
		return Token{}, fmt.Errorf("login: no consent page after it: %.300s", page)
	}
	if action, csrf, err = pageForm(pageURL, page); err != nil {
		return Token{}, fmt.Errorf("consent page: %w", err)
	}
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(url.Values{"csrf_token": {csrf}, "allow": {"Authorize"}}.Encode()))
	setFormHeaders(req, c.Base)
	resp, err := browser.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("consent: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), MezzoRedir) {
		return Token{}, fmt.Errorf("consent: %d, no redirect to the callback", resp.StatusCode)
	}
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		return Token{}, fmt.Errorf("consent: callback %s", loc.RawQuery)
	}
	return c.TokenRequest(MezzoID, MezzoSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {MezzoRedir}, "code_verifier": {verifier},
	})
}

// browse sends a browser request (a form post when form is not nil),
// following redirects on the server, and returns the final page and URL.
func (c *Client) browse(browser *http.Client, method, u string, form url.Values) (string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return "", "", err
	}
	if form != nil {
		setFormHeaders(req, c.Base)
	}
	resp, err := browser.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s %s: %d %.300s", method, resp.Request.URL.Path, resp.StatusCode, b)
	}
	return string(b), resp.Request.URL.String(), nil
}

// setFormHeaders marks a form post as same-origin, as a browser does.
func setFormHeaders(req *http.Request, base string) {
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
}

// pageForm returns the absolute action and the CSRF token of a page's form.
func pageForm(pageURL, page string) (action, csrf string, err error) {
	a := formAction.FindStringSubmatch(page)
	t := csrfInput.FindStringSubmatch(page)
	if a == nil || t == nil {
		return "", "", errors.New("no form with a csrf_token in the page")
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return "", "", err
	}
	ref, err := base.Parse(html.UnescapeString(a[1]))
	if err != nil {
		return "", "", err
	}
	return ref.String(), html.UnescapeString(t[1]), nil
}
