// Command bare is the limit the bench compares ircam-auth with: a bare
// net/http server that answers /profile/, /o/introspect/, /o/token/ and
// /healthz with fixed bytes (the real server's answers, captured by
// bench/run.sh) and the same headers, doing no other work. What it serves
// per second on this machine is what any net/http server could.
//
//	bare --listen 127.0.0.1:9100 --profile p.json --introspect i.json --token t.json
//
// Like ircam-auth it prints "ready: http://ADDR/healthz" once it listens.
// It takes --ldap-listen and ignores it, so both start with the same flags.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9100", "HTTP listen address")
	flag.String("ldap-listen", "", "ignored")
	profile := flag.String("profile", "", "file with the body of GET /profile/")
	introspect := flag.String("introspect", "", "file with the body of POST /o/introspect/")
	token := flag.String("token", "", "file with the body of POST /o/token/")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle("GET /profile/{$}", fixed(read(*profile, `{"id":1}`+"\n")))
	mux.Handle("POST /o/introspect/{$}", fixed(read(*introspect, `{"active":true}`+"\n")))
	mux.Handle("POST /o/token/{$}", fixed(read(*token, `{"access_token":"x"}`+"\n")))
	mux.Handle("GET /healthz", fixed([]byte(`{"directory":"ok","http":"ok","status":"ok"}`+"\n")))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	// The same server settings as ircam-auth's.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go srv.Serve(ln)
	fmt.Printf("ready: http://%s/healthz\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Close()
}

func read(path, fallback string) []byte {
	if path == "" {
		return []byte(fallback)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	return b
}

// fixed answers body with the JSON headers of ircam-auth's API answers,
// after reading the request body as a real handler must.
func fixed(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		w.Write(body)
	})
}
