// Package bench measures ircam-auth: Go benchmarks of the grants, the
// authorization code flow and the LDAP fallback against the real server
// (the binary of ./cmd/ircam-auth run as a process on loopback), and of
// one bcrypt comparison at the same cost, so that bench/run.sh can report
// ratios measured in one run. See bench/README.md.
//
//	go test ./bench -run '^$' -bench . -benchtime 3s
//
// IRCAM_AUTH_BIN names a prebuilt binary (bench/run.sh sets it); without
// it the benchmarks build one. BENCH_BCRYPT_COST (default 10, the
// server's default) is the --bcrypt-cost of the server and the cost of
// BenchmarkBcryptCompare.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ircam/ircam-auth/bench/internal/harness"
	defaultfixtures "github.com/ircam/ircam-auth/fixtures"
	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"github.com/ircam/ircam-auth/internal/ldaptest"
	"github.com/ircam/ircam-auth/internal/users"
	"golang.org/x/crypto/bcrypt"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	tmpDir  string

	srvOnce   sync.Once
	srv       *harness.Server
	srvClient *harness.Client
	srvErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	srv.Stop()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// bcryptCost is the server's --bcrypt-cost and BenchmarkBcryptCompare's.
func bcryptCost(tb testing.TB) int {
	v := os.Getenv("BENCH_BCRYPT_COST")
	if v == "" {
		return fixtures.DefaultBcryptCost
	}
	c, err := strconv.Atoi(v)
	if err != nil {
		tb.Fatalf("BENCH_BCRYPT_COST=%q: %v", v, err)
	}
	return c
}

// binary returns the ircam-auth binary, building it once when
// IRCAM_AUTH_BIN is not set.
func binary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if binPath = os.Getenv("IRCAM_AUTH_BIN"); binPath != "" {
			return
		}
		if tmpDir, binErr = os.MkdirTemp("", "ircam-auth-bench-"); binErr == nil {
			binPath, binErr = harness.Build(tmpDir, "github.com/ircam/ircam-auth/cmd/ircam-auth")
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

// server is one ircam-auth process shared by the HTTP benchmarks, with
// default flags but --bcrypt-cost and free loopback ports, and one client
// of it: a benchmark function runs several times as b.N grows, and a new
// client each time would leave its idle connections open on the server.
func server(b *testing.B) *harness.Client {
	b.Helper()
	srvOnce.Do(func() {
		srv, srvErr = harness.StartHealthy(binary(b), harness.Options{
			Args: []string{"--bcrypt-cost", strconv.Itoa(bcryptCost(b))},
		})
		if srvErr == nil {
			srvClient = harness.NewClient(srv.URL)
		}
	})
	if srvErr != nil {
		b.Fatal(srvErr)
	}
	return srvClient
}

// BenchmarkBcryptCompare is one bcrypt.CompareHashAndPassword at the
// configured cost, on one core: the floor of a local login.
func BenchmarkBcryptCompare(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte(harness.LocalPass), bcryptCost(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(hash, []byte(harness.LocalPass)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "compares/s")
}

// parallel runs op from parallelism×GOMAXPROCS goroutines at once and
// reports its rate in unit (per second). A failed op fails the benchmark
// and stops its goroutine, so a broken server cannot make a fast figure.
// Each goroutine gets its own op from newOp, and gives its state back
// with done (nil: none) when it stops.
func parallel(b *testing.B, parallelism int, unit string, newOp func() (op func() error, done func())) {
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		op, done := newOp()
		if done != nil {
			defer done()
		}
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// stateless is a newOp of parallel for an op that keeps no state.
func stateless(op func() error) func() (func() error, func()) {
	return func() (func() error, func()) { return op, nil }
}

// BenchmarkBcryptCompareParallel is bcrypt comparisons on every core at
// once: how many local logins per second the machine could check.
func BenchmarkBcryptCompareParallel(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte(harness.LocalPass), bcryptCost(b))
	if err != nil {
		b.Fatal(err)
	}
	parallel(b, 1, "compares/s", stateless(func() error {
		return bcrypt.CompareHashAndPassword(hash, []byte(harness.LocalPass))
	}))
}

// BenchmarkAuthCodeFlow is the whole authorization code flow of a local
// user (alice) through a new browser each time: login page, login form
// (one bcrypt), consent page, consent form, code exchange with PKCE.
// 2×GOMAXPROCS flows are in flight, enough to keep every core of the
// server busy with bcrypt.
func BenchmarkAuthCodeFlow(b *testing.B) {
	c := server(b)
	parallel(b, 2, "flows/s", stateless(func() error {
		_, err := c.AuthCodeFlow(harness.LocalUser, harness.LocalPass)
		return err
	}))
}

// BenchmarkTokenClientCredentials is POST /o/token/ with
// grant_type=client_credentials (ci-robot), 8×GOMAXPROCS in flight.
func BenchmarkTokenClientCredentials(b *testing.B) {
	c := server(b)
	parallel(b, 8, "tokens/s", stateless(func() error {
		_, err := c.ClientCredentials()
		return err
	}))
}

// refreshChains holds the newest refresh token of each chain of
// rotations; a chain starts with a password grant of alice.
var refreshChains = make(chan string, 1024)

// BenchmarkTokenRefresh is POST /o/token/ with grant_type=refresh_token:
// each in-flight request rotates its own chain's newest refresh token
// (refresh tokens rotate, so each is used once). 8×GOMAXPROCS in flight.
func BenchmarkTokenRefresh(b *testing.B) {
	c := server(b)
	const parallelism = 8
	need := parallelism * runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, need)
	for range need - len(refreshChains) {
		wg.Go(func() {
			t, err := c.PasswordGrant(harness.LocalUser, harness.LocalPass)
			if err != nil {
				errs <- err
				return
			}
			refreshChains <- t.RefreshToken
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	parallel(b, parallelism, "tokens/s", func() (func() error, func()) {
		rt := <-refreshChains
		return func() error {
				t, err := c.Refresh(rt)
				if err == nil {
					rt = t.RefreshToken
				}
				return err
			}, func() {
				refreshChains <- rt
			}
	})
}

// BenchmarkPasswordGrant is the latency of one password grant through the
// real server, one at a time: alice is checked with bcrypt, bob with the
// server's embedded glauth directory (search as the service account, then
// a bind as bob: two glauth binds).
func BenchmarkPasswordGrant(b *testing.B) {
	for _, tc := range []struct{ name, user, password string }{
		{"local-alice", harness.LocalUser, harness.LocalPass},
		{"ldap-bob-embedded-glauth", harness.LDAPUser, harness.LDAPPassword},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := server(b)
			for b.Loop() {
				if _, err := c.PasswordGrant(tc.user, tc.password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLDAPLogin is users.Store.Authenticate for bob, a user without a
// local password, in process: the LDAP fallback (search-then-bind) alone.
//   - glauth-ldaptest: ldaptest.StartGlauth (hashes at bcrypt.MinCost)
//   - glauth-embedded: the default fixtures' directory as the server
//     embeds it (entries hashed at fixtures.DirectoryBcryptCost)
//   - slapd: ldaptest.StartSlapd, OpenLDAP with {SSHA} passwords
func BenchmarkLDAPLogin(b *testing.B) {
	seed := defaultFixtures(b)
	dirs := []struct {
		name  string
		start func(b *testing.B) ldapbind.Config
	}{
		{"glauth-ldaptest", func(b *testing.B) ldapbind.Config { return ldaptest.StartGlauth(b).SearchConfig }},
		{"glauth-embedded", func(b *testing.B) ldapbind.Config { return startEmbedded(b, seed.Directory) }},
		{"slapd", func(b *testing.B) ldapbind.Config { return ldaptest.StartSlapd(b).SearchConfig }},
	}
	for _, d := range dirs {
		b.Run(d.name, func(b *testing.B) {
			store := ldapStore(b, seed.Users, d.start(b))
			for b.Loop() {
				if err := ldapLogin(store); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// defaultFixtures parses the default fixtures once, at bcrypt's lowest
// cost: the users' hashes are not what BenchmarkLDAPLogin measures, and
// directory entries are hashed at fixtures.DirectoryBcryptCost whatever
// the cost, as in the server.
func defaultFixtures(tb testing.TB) *fixtures.File {
	tb.Helper()
	f, err := fixtures.Parse(defaultfixtures.DefaultName, defaultfixtures.Default, bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// ldapStore is a store of seed whose directory is the one cfg reaches.
func ldapStore(tb testing.TB, seed []fixtures.User, cfg ldapbind.Config) *users.Store {
	tb.Helper()
	dir, err := ldapbind.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := users.NewStore(seed, dir, bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return store
}

// ldapLogin authenticates bob, who has no local password, by store's
// directory, and checks that the directory is what let him in.
func ldapLogin(store *users.Store) error {
	u, method, err := store.Authenticate(context.Background(), harness.LDAPUser, harness.LDAPPassword)
	if err != nil || method != users.MethodLDAP || u.Username != harness.LDAPUser {
		return fmt.Errorf("Authenticate(bob): %q %v %v", u.Username, method, err)
	}
	return nil
}

// startEmbedded starts the directory d on a free loopback port, the way
// cmd/ircam-auth's startDirectory does, and returns the search-then-bind
// config of its service account.
func startEmbedded(tb testing.TB, d fixtures.Directory) ldapbind.Config {
	tb.Helper()
	cfg, servicePassword := ldapbind.SeedFromFixtures(d)
	cfg.Listen = "127.0.0.1:0"
	dir, err := ldapbind.StartDirectory(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dir.Close() })
	lc, err := dir.ClientConfig(d.ServiceAccount)
	if err != nil {
		tb.Fatal(err)
	}
	lc.BindPassword = servicePassword
	return lc
}

// TestHarness runs every client of the benchmarks once against the real
// binary (at bcrypt cost 4), the embedded directory in process, and the
// bare server, so that a change of the server that breaks the bench shows
// up in the test suite, not on the day someone runs bench/run.sh.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server binary")
	}
	s, err := harness.StartHealthy(binary(t), harness.Options{Args: []string{"--bcrypt-cost", "4"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := harness.NewClient(s.URL)
	tok, err := c.AuthCodeFlow(harness.LocalUser, harness.LocalPass)
	if err != nil {
		t.Fatal(err)
	}
	profile, err := c.Profile(tok.AccessToken)
	if err != nil || !strings.Contains(string(profile), `"username":"alice"`) {
		t.Errorf("profile: %s %v", profile, err)
	}
	// Two rotations of one chain, as BenchmarkTokenRefresh does.
	rt := tok.RefreshToken
	for range 2 {
		next, err := c.Refresh(rt)
		if err != nil {
			t.Fatal(err)
		}
		rt = next.RefreshToken
	}
	if _, err := c.ClientCredentials(); err != nil {
		t.Error(err)
	}
	bob, err := c.PasswordGrant(harness.LDAPUser, harness.LDAPPassword)
	if err != nil {
		t.Fatal(err)
	}
	if i, err := c.Introspect(bob.AccessToken); err != nil || !strings.Contains(string(i), `"active":true`) {
		t.Errorf("introspect: %s %v", i, err)
	}
	m, err := harness.ReadMemory(s.PID())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("memory of the server: %+v %v", m, err)
	}
	// Errors == 0 also means FirstErr == nil: it is set by errors only.
	res := harness.Run(context.Background(), 4, 10*time.Second, 20, func() func() error {
		return func() error { _, err := c.ClientCredentials(); return err }
	})
	if res.Requests != 20 || res.Errors != 0 || res.RPS() <= 0 || res.Percentile(0.99) <= 0 {
		t.Errorf("load run: %+v", res)
	}

	// BenchmarkLDAPLogin's glauth-embedded directory, in process.
	seed := defaultFixtures(t)
	if err := ldapLogin(ldapStore(t, seed.Users, startEmbedded(t, seed.Directory))); err != nil {
		t.Error(err)
	}

	// The bare server repeats the real server's bytes, as after tool prepare.
	dir := t.TempDir()
	bareBin, err := harness.Build(dir, "github.com/ircam/ircam-auth/bench/bare")
	if err != nil {
		t.Fatal(err)
	}
	profileFile := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(profileFile, profile, 0o600); err != nil {
		t.Fatal(err)
	}
	bare, err := harness.Start(bareBin, harness.Options{Args: []string{"--profile", profileFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Stop()
	if p, err := harness.NewClient(bare.URL).Profile("x"); err != nil || string(p) != string(profile) {
		t.Errorf("bare /profile/: %q %v, want %q", p, err, profile)
	}
}
