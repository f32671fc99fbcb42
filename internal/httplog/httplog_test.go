package httplog_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ircam/ircam-auth/internal/httplog"
	"github.com/ircam/ircam-auth/internal/testkit"
)

func TestMiddlewareLogsOneLinePerRequest(t *testing.T) {
	var buf testkit.SyncBuffer
	h := httplog.Middleware(slog.New(slog.NewJSONHandler(&buf, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httplog.Set(r.Context(), "client_id", "mezzo")
		httplog.Set(r.Context(), "user", "alice")
		httplog.Set(r.Context(), "user", "bob") // the last value wins
		httplog.Set(r.Context(), "grant_type", "")
		w.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest(http.MethodPost, "/o/token/?code=SECRETCODE", nil)
	req.Header.Set("Authorization", "Bearer SECRETTOKEN")
	h.ServeHTTP(httptest.NewRecorder(), req)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"msg": "request", "method": "POST", "path": "/o/token/", "status": 418.0, "client_id": "mezzo", "user": "bob"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Error("no duration")
	}
	if _, ok := rec["grant_type"]; ok {
		t.Error("an empty value was logged")
	}
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("the query or a header was logged: %s", buf.String())
	}
}

func TestSetWithoutMiddlewareDoesNothing(t *testing.T) {
	httplog.Set(context.Background(), "user", "alice") // must not panic
}

func TestStatusAndLevel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status defaults to 200", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		}, `"level":"INFO","msg":"request","method":"GET","path":"/healthz","status":200`},
		{"the first status written counts", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusInternalServerError) // ignored by net/http too
		}, `"level":"INFO","msg":"request","method":"GET","path":"/healthz","status":404`},
		{"a status after the body does not count", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
			w.WriteHeader(http.StatusInternalServerError)
		}, `"status":200`},
		{"a server error is logged as an error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, `"level":"ERROR","msg":"request","method":"GET","path":"/healthz","status":503`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf testkit.SyncBuffer
			h := httplog.Middleware(slog.New(slog.NewJSONHandler(&buf, nil)), tc.handler)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if !strings.Contains(buf.String(), tc.want) {
				t.Errorf("log %s lacks %s", buf.String(), tc.want)
			}
		})
	}
}
