package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Odd and hostile requests to every endpoint get a 4xx with a message,
// never a 5xx, and the JSON endpoints answer JSON.
func TestBadInputNeverFails500(t *testing.T) {
	s := newTestServer(t, "--login-max-failures-per-ip", "0", "--login-max-failures-per-user", "0")
	authorize := "/o/authorize/?response_type=code&client_id=mezzo&redirect_uri=" + url.QueryEscape(mezzoCallback)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	pw := func(user, password string) string {
		return form("grant_type", "password", "client_id", "mezzo", "client_secret", "mezzo-secret", "username", user, "password", password)
	}
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
		json                     bool
	}{
		{"unicode username", "POST", "/o/token/", pw("ålice☃", "x"), nil, 400, true},
		{"NUL in username", "POST", "/o/token/", pw("bob\x00", "bob-ldap-pw"), nil, 400, true},
		{"NUL in password", "POST", "/o/token/", pw("alice", "alice-pw\x00"), nil, 400, true},
		{"LDAP filter in username", "POST", "/o/token/", pw("*)(uid=*", "x"), nil, 400, true},
		{"huge username", "POST", "/o/token/", pw(strings.Repeat("a", 10000), "x"), nil, 400, true},
		{"repeated grant_type", "POST", "/o/token/", form("grant_type", "password", "grant_type", "client_credentials", "client_id", "mezzo", "client_secret", "mezzo-secret"), nil, 400, true},
		{"body over the limit", "POST", "/o/token/", "grant_type=password&x=" + strings.Repeat("a", 2<<20), nil, 413, true},
		{"broken form encoding", "POST", "/o/token/", "grant_type=%zz", nil, 400, true},
		{"JSON body", "POST", "/o/token/", `{"grant_type":"password"}`, map[string]string{"Content-Type": "application/json"}, 400, true},
		{"garbage Basic auth", "POST", "/o/token/", form("grant_type", "client_credentials"), map[string]string{"Authorization": "Basic !!!"}, 401, true},
		{"no grant type", "POST", "/o/token/", form("client_id", "mezzo", "client_secret", "mezzo-secret"), nil, 400, true},
		{"GET the token endpoint", "GET", "/o/token/", "", nil, 405, true},
		{"introspect without token", "POST", "/o/introspect/", form("client_id", "mezzo", "client_secret", "mezzo-secret"), nil, 400, true},
		{"introspect unauthenticated", "GET", "/o/introspect/?token=x", "", nil, 401, true},
		{"revoke unauthenticated", "POST", "/o/revoke_token/", form("token", "x"), nil, 401, true},
		{"profile with Basic", "GET", "/profile/", "", map[string]string{"Authorization": "Basic YTpi"}, 401, true},
		{"profile with a huge token", "GET", "/profile/", "", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 30000)}, 401, true},
		{"authorize with a 20k state", "GET", authorize + "&state=" + strings.Repeat("s", 20000), "", nil, 200, false},
		{"authorize with a NUL in state", "GET", authorize + "&state=a%00b", "", nil, 200, false},
		{"authorize with bad escapes", "GET", "/o/authorize/?client_id=%zz", "", nil, 400, false},
		{"authorize with repeated client_id", "GET", authorize + "&client_id=mezzo", "", nil, 400, false},
		{"authorize with unicode client", "GET", "/o/authorize/?response_type=code&client_id=m%C3%A9zzo", "", nil, 400, false},
		{"logout with a NUL next", "GET", "/accounts/logout/?next=/a%00b", "", nil, 302, false},
		{"logout_redirect unknown", "GET", "/logout_redirect/%E2%98%83", "", nil, 404, false},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d: %.300s", resp.StatusCode, tc.want, body)
			}
			if tc.json {
				var e map[string]any
				if err := json.Unmarshal(body, &e); err != nil {
					t.Errorf("body is not JSON: %.300s", body)
				} else if resp.StatusCode >= 400 && (e["error"] == nil || e["error_description"] == nil) {
					t.Errorf("error without error and error_description: %s", body)
				}
			}
		})
	}
	// The server still works.
	if _, err := passwordToken(t, s, "alice", "alice-pw"); err != nil {
		t.Errorf("alice after the bad requests: %v", err)
	}
}
