package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ircam/ircam-auth/internal/testkit"
	"golang.org/x/crypto/bcrypt"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// started is a server started by run, as a person would start it.
type started struct {
	base   string // http://host:port
	stdout *testkit.SyncBuffer
	stderr *testkit.SyncBuffer
	stop   func() error
}

var readyLine = regexp.MustCompile(`ready: (http://[^\s]+)/healthz`)

// startRun starts run with args and waits for its ready line.
func startRun(t *testing.T, args []string, environ map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env(environ), strings.NewReader(""), s.stdout, s.stderr) }()
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.After(20 * time.Second)
	for {
		if m := readyLine.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = m[1]
			return s
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before it was ready: %v\nstdout:\n%s\nstderr:\n%s", err, s.stdout, s.stderr)
		case <-deadline:
			t.Fatalf("no ready line\nstdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// testArgs start the server on free ports with cheap hashes.
func testArgs(t *testing.T, extra ...string) []string {
	return append([]string{"--listen", "127.0.0.1:0", "--ldap-listen", freeAddr(t), "--bcrypt-cost", "4"}, extra...)
}

func TestRunServesAndStopsCleanly(t *testing.T) {
	s := startRun(t, testArgs(t), nil)
	for _, want := range []string{"alice", "bob", "carol", "mezzo", "cn=bob,ou=people,ou=users,dc=ircam,dc=fr", "embedded LDAP directory on ldap://127.0.0.1:"} {
		if !strings.Contains(s.stdout.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, s.stdout)
		}
	}
	resp, err := http.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["status"] != "ok" || body["directory"] != "ok" {
		t.Errorf("healthz: %d %v", resp.StatusCode, body)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("run returned %v after its context ended", err)
	}
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Error("still serving after stop")
	}
	if !strings.Contains(s.stderr.String(), "stopped") {
		t.Errorf("no stop line in the log:\n%s", s.stderr)
	}
}

// The embedded directory is a real LDAP server: bob binds with his
// directory password over a socket, as ldapwhoami does.
func TestEmbeddedDirectoryAnswersLDAP(t *testing.T) {
	ldapAddr := freeAddr(t)
	startRun(t, []string{"--listen", "127.0.0.1:0", "--ldap-listen", ldapAddr, "--bcrypt-cost", "4"}, nil)
	conn, err := ldap.DialURL("ldap://" + ldapAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind("cn=bob,ou=people,ou=users,dc=ircam,dc=fr", "bob-ldap-pw"); err != nil {
		t.Fatalf("bob's bind: %v", err)
	}
	if _, err := conn.WhoAmI(nil); err != nil {
		t.Errorf("who am I: %v", err)
	}
	if err := conn.Bind("cn=bob,ou=people,ou=users,dc=ircam,dc=fr", "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestEnvironmentTwins(t *testing.T) {
	addr := freeAddr(t)
	s := startRun(t, nil, map[string]string{
		"IRCAM_AUTH_LISTEN":      addr,
		"IRCAM_AUTH_LDAP_LISTEN": freeAddr(t),
		"IRCAM_AUTH_BCRYPT_COST": "4",
		"IRCAM_AUTH_LOG_FORMAT":  "json",
	})
	if s.base != "http://"+addr {
		t.Errorf("listening on %s, want %s from IRCAM_AUTH_LISTEN", s.base, addr)
	}
	line, _, _ := strings.Cut(s.stderr.String(), "\n")
	if !json.Valid([]byte(line)) {
		t.Errorf("IRCAM_AUTH_LOG_FORMAT=json, but the log line is %q", line)
	}
}

func TestFlagBeatsEnvironment(t *testing.T) {
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:1234"}, env(map[string]string{"IRCAM_AUTH_LISTEN": "127.0.0.1:999"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1234" {
		t.Errorf("listen = %s", cfg.Listen)
	}
}

func TestBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad env value", nil, map[string]string{"IRCAM_AUTH_BCRYPT_COST": "ten"}, []string{"IRCAM_AUTH_BCRYPT_COST"}},
		{"several problems at once", []string{"--log-format", "xml", "--bcrypt-cost", "99"}, nil, []string{"--log-format", "--bcrypt-cost"}},
		{"external directory without base", []string{"--ldap-url", "ldap://x:389"}, nil, []string{"--ldap-base-dn"}},
		{"bad public URL", []string{"--public-url", "localhost:9000"}, nil, []string{"--public-url"}},
		{"stray argument", []string{"serve"}, nil, []string{`unexpected argument "serve"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, env(tc.env), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestHelpListsEnvironment(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, env(nil), nil, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--ldap-url", "IRCAM_AUTH_LDAP_URL", "IRCAM_AUTH_PUBLIC_URL", "default 127.0.0.1:9000", "hash-password", "check-fixtures"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestBadFixturesStopTheStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("users:\n  - id: 1\n    username: alice\n    pasword: x\n"), 0o600)
	err := run(context.Background(), testArgs(t, "--fixtures", path), env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":4:") || !strings.Contains(err.Error(), `unknown key "pasword"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestBusyLDAPPortIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"--listen", "127.0.0.1:0", "--ldap-listen", ln.Addr().String()}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "--ldap-listen") {
		t.Fatalf("err = %v", err)
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-password", "--cost", "4"}, env(nil), strings.NewReader("s3cret\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Errorf("%q is not a hash of s3cret", h)
	}
	if err := run(context.Background(), []string{"hash-password"}, env(nil), strings.NewReader("\n"), io.Discard, io.Discard); err == nil {
		t.Error("empty password hashed")
	}
}

func TestCheckFixtures(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check-fixtures", "../../fixtures/default.yaml"}, env(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("output %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("clients:\n  - {client_id: c, name: C, redirect_uris: [/cb]}\n"), 0o600)
	err := run(context.Background(), []string{"check-fixtures", bad}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:2:", bad)) {
		t.Errorf("err = %v", err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	s := startRun(t, testArgs(t), nil)
	listen := strings.TrimPrefix(s.base, "http://")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--listen", listen}, env(nil), nil, &out, io.Discard); err != nil {
		t.Fatalf("healthcheck of a running server: %v", err)
	}
	if !strings.Contains(out.String(), `"status":"ok"`) {
		t.Errorf("output %q", out.String())
	}
	// IRCAM_AUTH_LISTEN is its default, as in the container.
	if err := run(context.Background(), []string{"healthcheck"}, env(map[string]string{"IRCAM_AUTH_LISTEN": listen}), nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck with IRCAM_AUTH_LISTEN: %v", err)
	}
	err := run(context.Background(), []string{"healthcheck", "--listen", freeAddr(t)}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "healthcheck") {
		t.Errorf("healthcheck of nothing: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "--listen", "nohost"}, env(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("a bad --listen was accepted")
	}
	// A server whose directory is down answers 503: unhealthy.
	down := newTestServer(t)
	down.app.dir.Close()
	err = run(context.Background(), []string{"healthcheck", "--listen", strings.TrimPrefix(down.URL, "http://")}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "directory") {
		t.Errorf("healthcheck with the directory down: %v", err)
	}
}
