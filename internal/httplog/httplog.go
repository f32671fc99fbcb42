// Package httplog writes one structured log line per HTTP request: method,
// path, status, duration, and the client_id and user a handler learned
// while serving it. It never logs a query string, a header or a body, where
// codes, tokens and passwords travel.
package httplog

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

type fieldsKey struct{}

// fields are what handlers add to the request's log line.
type fields struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

// Set adds key=value to the log line of the request whose context is ctx;
// without the middleware it does nothing. Keys: client_id, user, grant_type.
func Set(ctx context.Context, key, value string) {
	f, ok := ctx.Value(fieldsKey{}).(*fields)
	if !ok || value == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.IndexFunc(f.attrs, func(a slog.Attr) bool { return a.Key == key }); i >= 0 {
		f.attrs[i].Value = slog.StringValue(value)
		return
	}
	f.attrs = append(f.attrs, slog.String(key, value))
}

// Middleware logs every request served by next.
func Middleware(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		f := &fields{}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), fieldsKey{}, f)))
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		f.mu.Lock()
		attrs = append(attrs, f.attrs...)
		f.mu.Unlock()
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
