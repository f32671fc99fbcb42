package token_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint: whatever the body and Authorization header, the
// token endpoint answers JSON, and never with a 500.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("grant_type=client_credentials", "Basic Y2ktcm9ib3Q6Y2ktcm9ib3Qtc2VjcmV0")
	f.Add("grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2Fa&client_id=mezzo&client_secret=mezzo-secret", "")
	f.Add("grant_type=refresh_token&refresh_token=%zz", "Basic !!")
	f.Add("grant_type=password&username=alice&password=alice-pw&scope=read+read", "bearer x")
	f.Add("grant_type=password&username=down&password=x&client_id=mezzo&client_secret=mezzo-secret", "")
	f.Add("a=1&a=2;b", "Basic Og==")
	e := newEnv(f)
	mux := http.NewServeMux()
	e.svc.Register(mux)
	f.Fuzz(func(t *testing.T, body, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/o/token/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("body is not JSON: %q", rec.Body)
		}
		if rec.Code != http.StatusOK && v["error"] == nil {
			t.Fatalf("error answer without error: %s", rec.Body)
		}
	})
}
