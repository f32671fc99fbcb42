package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Load: a few hundred full login sequences at once against one server,
// for the race detector (go test -race) and for mix-ups between users: a
// local user (alice), a directory user with a fixture entry (bob) and one
// created at her first login (carol), each flow checking it got its own
// user in the profile and in introspection, and that nothing answered 5xx.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	const (
		flows   = 300
		workers = 32
	)
	s := newTestServer(t)
	users := []loadUser{
		{"alice", "alice-pw", 1, false},
		{"bob", "bob-ldap-pw", 2, true},
		{"carol", "carol-ldap-pw", 10003, true},
	}
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	t.Cleanup(transport.CloseIdleConnections)

	start := time.Now()
	jobs := make(chan int)
	var (
		mu        sync.Mutex
		failures  []string
		completed atomic.Int64
		requests  atomic.Int64
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				u := users[i%len(users)]
				lf := &loadFlow{server: s.URL, conf: s.mezzo(), transport: transport, requests: &requests}
				if err := lf.run(t.Context(), u); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("flow %d (%s): %v", i, u.name, err))
					mu.Unlock()
					continue
				}
				completed.Add(1)
			}
		})
	}
	for i := range flows {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	t.Logf("%d flows (%d HTTP requests) with %d workers in %v", flows, requests.Load(), workers, time.Since(start).Round(time.Millisecond))
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more failures", len(failures)-10)
			break
		}
		t.Error(f)
	}
	if n := completed.Load(); n != flows {
		t.Errorf("%d of %d flows completed", n, flows)
	}
}

type loadUser struct {
	name, password string
	id             float64
	ldap           bool
}

// loadFlow is one browser and one client of the load test. Unlike the
// browser of flow_test.go it returns errors instead of failing the test,
// as it runs off the test's goroutine.
type loadFlow struct {
	server    string
	conf      *oauth2.Config
	transport http.RoundTripper
	requests  *atomic.Int64
	client    *http.Client
}

func (f *loadFlow) run(ctx context.Context, u loadUser) error {
	jar, _ := cookiejar.New(nil)
	f.client = &http.Client{
		Jar: jar, Transport: f.transport, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), f.server) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	state := rand.Text()
	verifier := oauth2.GenerateVerifier()

	// Login page, login, consent, redirect to the client with the code.
	resp, page, err := f.do(ctx, http.MethodGet, f.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authorize: status %d", resp.StatusCode)
	}
	resp, page, err = f.submit(ctx, resp.Request.URL, page, url.Values{"username": {u.name}, "password": {u.password}})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="allow"`) {
		return fmt.Errorf("login: status %d, not the consent page", resp.StatusCode)
	}
	resp, _, err = f.submit(ctx, resp.Request.URL, page, url.Values{"allow": {"Authorize"}})
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("consent: status %d, no redirect", resp.StatusCode)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), mezzoCallback+"?") || q.Get("state") != state || q.Get("code") == "" {
		return fmt.Errorf("consent: redirect to %s, want the callback with a code and state %s", loc, state)
	}

	// The client's side: exchange, profile, introspection.
	f.requests.Add(1)
	tok, err := f.conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: f.transport}),
		q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	var p map[string]any
	if err := f.json(ctx, http.MethodGet, f.server+"/profile/", nil, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}, &p); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if p["username"] != u.name || p["id"] != u.id || p["ext_id"] != u.id || p["is_ldap_user"] != u.ldap {
		return fmt.Errorf("profile %v: want username %s, id %v, is_ldap_user %v", p, u.name, u.id, u.ldap)
	}
	var in map[string]any
	if err := f.json(ctx, http.MethodPost, f.server+"/o/introspect/", url.Values{"token": {tok.AccessToken}}, func(r *http.Request) {
		r.SetBasicAuth("ci-robot", "ci-robot-secret")
	}, &in); err != nil {
		return fmt.Errorf("introspect: %w", err)
	}
	if in["active"] != true || in["username"] != u.name || in["client_id"] != "mezzo" || in["sub"] != fmt.Sprint(u.id) {
		return fmt.Errorf("introspection %v: want %s, active, client mezzo", in, u.name)
	}
	return nil
}

// do sends a request with the browser, form-encoded when form is not nil,
// and reads the body; a 5xx is an error.
func (f *loadFlow) do(ctx context.Context, method, u string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", f.server)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	f.requests.Add(1)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode >= 500 {
		return nil, "", fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return resp, string(b), nil
}

// submit posts the first form of page, at pageURL, with the fields set.
func (f *loadFlow) submit(ctx context.Context, pageURL *url.URL, page string, set url.Values) (*http.Response, string, error) {
	fm, err := findForm(page)
	if err != nil {
		return nil, "", err
	}
	target, err := pageURL.Parse(fm.action)
	if err != nil {
		return nil, "", err
	}
	for k, v := range set {
		fm.fields[k] = v
	}
	return f.do(ctx, http.MethodPost, target.String(), fm.fields)
}

// json sends a request with the client (no cookies) and decodes the JSON
// answer, which must be a 200.
func (f *loadFlow) json(ctx context.Context, method, u string, form url.Values, auth func(*http.Request), v any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	auth(req)
	f.requests.Add(1)
	resp, err := (&http.Client{Transport: f.transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
