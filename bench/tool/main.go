// Command tool is bench/run.sh's helper: it measures what wrk and the Go
// benchmarks cannot, and prints the report.
//
//	tool startup -bin BIN [-n 20]            start → /healthz 200, n times
//	tool memory -bin BIN [-tokens 100000]    VmRSS/VmHWM idle and after n tokens
//	tool load -url URL -kind K [-d 5s]       Go load generator (when wrk is missing,
//	                                         and for the auth code flow under pprof)
//	tool prepare -url URL -dir DIR           alice's access token and the real
//	                                         answers the bare server repeats
//	tool freeaddr                            a free loopback host:port
//	tool fetch URL FILE                      GET URL into FILE (a pprof profile)
//	tool report RESULTS GOBENCH              the figures table, with ratios
//
// Every measurement prints "key value" lines on stdout, which run.sh
// collects into one results file for the report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ircam/ircam-auth/bench/internal/harness"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool startup|memory|load|prepare|freeaddr|fetch|report ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "startup":
		err = startup(os.Args[2:])
	case "memory":
		err = memory(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "freeaddr":
		var a string
		if a, err = harness.FreeAddr(); err == nil {
			fmt.Println(a)
		}
	case "fetch":
		if len(os.Args) != 4 {
			err = errors.New("usage: tool fetch URL FILE")
		} else {
			err = fetch(os.Args[2], os.Args[3])
		}
	case "prepare":
		err = prepare(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tool:", err)
		os.Exit(1)
	}
}

// startup starts the binary n times with free loopback ports and measures
// the time from just before exec to the first 200 of /healthz (polled
// every 500 µs), and to the "ready:" line. It prints the median and the
// spread under the given prefix.
func startup(args []string) error {
	fs := flag.NewFlagSet("startup", flag.ExitOnError)
	bin := fs.String("bin", "", "server binary")
	n := fs.Int("n", 20, "number of starts (at least 1)")
	prefix := fs.String("prefix", "startup", "key prefix of the printed figures")
	extra := fs.String("args", "", "extra flags, space-separated")
	env := fs.String("env", "", "extra environment, space-separated KEY=VALUE")
	hold := fs.Duration("hold", 0, "keep each server running this long after its start (for start-up profiles)")
	fs.Parse(args)
	if *bin == "" || *n < 1 {
		return errors.New("startup: -bin and -n ≥ 1 are required")
	}
	var toHealthy, toReady []time.Duration
	for i := range *n {
		s, err := harness.Start(*bin, harness.Options{Args: strings.Fields(*extra), Env: envList(*env, i)})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = harness.WaitHealthy(ctx, s.URL, 500*time.Microsecond)
		healthy := time.Now()
		cancel()
		time.Sleep(*hold)
		s.Stop()
		if err != nil {
			return err
		}
		toHealthy = append(toHealthy, healthy.Sub(s.Started))
		toReady = append(toReady, s.Ready.Sub(s.Started))
	}
	slices.Sort(toHealthy)
	slices.Sort(toReady)
	fmt.Printf("%s_healthz_median_ms %.1f\n", *prefix, ms(harness.Percentile(toHealthy, 0.5)))
	fmt.Printf("%s_healthz_min_ms %.1f\n", *prefix, ms(toHealthy[0]))
	fmt.Printf("%s_healthz_p90_ms %.1f\n", *prefix, ms(harness.Percentile(toHealthy, 0.9)))
	fmt.Printf("%s_healthz_max_ms %.1f\n", *prefix, ms(toHealthy[len(toHealthy)-1]))
	fmt.Printf("%s_ready_median_ms %.1f\n", *prefix, ms(harness.Percentile(toReady, 0.5)))
	fmt.Printf("%s_starts %d\n", *prefix, *n)
	return nil
}

// envList expands {i} in the extra environment to the start's number, so
// that each start can write its own profile.
func envList(s string, i int) []string {
	var out []string
	for _, kv := range strings.Fields(s) {
		out = append(out, strings.ReplaceAll(kv, "{i}", strconv.Itoa(i)))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// memory starts the server, reads VmRSS and VmHWM once it is idle, issues
// tokens by client_credentials from concurrent clients, and reads them
// again.
func memory(args []string) error {
	fs := flag.NewFlagSet("memory", flag.ExitOnError)
	bin := fs.String("bin", "", "server binary")
	extra := fs.String("args", "", "extra flags, space-separated")
	tokens := fs.Int("tokens", 100_000, "tokens to issue")
	workers := fs.Int("c", 32, "concurrent requests")
	fs.Parse(args)
	if *bin == "" {
		return errors.New("memory: -bin is required")
	}
	s, err := harness.StartHealthy(*bin, harness.Options{Args: strings.Fields(*extra)})
	if err != nil {
		return err
	}
	defer s.Stop()
	time.Sleep(500 * time.Millisecond) // let the start-up garbage go
	idle, err := harness.ReadMemory(s.PID())
	if err != nil {
		return err
	}
	c := harness.NewClient(s.URL)
	res := harness.Run(context.Background(), *workers, 5*time.Minute, *tokens, func() func() error {
		return func() error { _, err := c.ClientCredentials(); return err }
	})
	if res.Errors > 0 {
		return fmt.Errorf("memory: %d of %d token requests failed: %v", res.Errors, res.Requests, res.FirstErr)
	}
	after, err := harness.ReadMemory(s.PID())
	if err != nil {
		return err
	}
	fmt.Printf("mem_idle_rss_kb %d\nmem_idle_hwm_kb %d\n", idle.RSS, idle.HWM)
	fmt.Printf("mem_tokens %d\nmem_tokens_rss_kb %d\nmem_tokens_hwm_kb %d\n", res.Requests, after.RSS, after.HWM)
	fmt.Printf("mem_tokens_rps %.0f\n", res.RPS())
	return nil
}

// load is a closed-loop Go load generator for one kind of request.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	base := fs.String("url", "", "server base URL")
	kind := fs.String("kind", "", "profile, introspect, token (client_credentials), refresh or flow (authorization code)")
	d := fs.Duration("d", 5*time.Second, "duration")
	workers := fs.Int("c", 16, "concurrent requests")
	token := fs.String("token", "", "access token for profile and introspect")
	prefix := fs.String("prefix", "", "key prefix of the printed figures; default: load_KIND")
	pprofURL := fs.String("pprof", "", "URL of the server's /debug/pprof/profile (the bench's pprof build)")
	cpuprofile := fs.String("cpuprofile", "", "write the server's CPU profile over the run to this file (needs -pprof)")
	fs.Parse(args)
	if *prefix == "" {
		*prefix = "load_" + *kind
	}
	if *cpuprofile != "" && *pprofURL == "" {
		return errors.New("load: -cpuprofile needs -pprof")
	}
	c := harness.NewClient(*base)
	var newWorker func() func() error
	switch *kind {
	case "profile":
		newWorker = func() func() error { return func() error { _, err := c.Profile(*token); return err } }
	case "introspect":
		newWorker = func() func() error { return func() error { _, err := c.Introspect(*token); return err } }
	case "token":
		newWorker = func() func() error { return func() error { _, err := c.ClientCredentials(); return err } }
	case "refresh":
		// Each worker rotates its own chain, started by a password grant;
		// a worker whose grant failed fails each request with its error.
		newWorker = func() func() error {
			t, err := c.PasswordGrant(harness.LocalUser, harness.LocalPass)
			if err != nil {
				return func() error { return fmt.Errorf("start of the chain: %w", err) }
			}
			rt := t.RefreshToken
			return func() error {
				t, err := c.Refresh(rt)
				if err == nil {
					rt = t.RefreshToken
				}
				return err
			}
		}
	case "flow":
		newWorker = func() func() error {
			return func() error { _, err := c.AuthCodeFlow(harness.LocalUser, harness.LocalPass); return err }
		}
	default:
		return fmt.Errorf("load: unknown -kind %q", *kind)
	}
	// With -cpuprofile, a CPU profile of the server (its pprof build) is
	// taken over the load run, after the workers' set-up.
	var profiled sync.WaitGroup
	var profErr error
	startProfile := func() {
		if *cpuprofile == "" {
			return
		}
		profiled.Go(func() { profErr = fetch(fmt.Sprintf("%s?seconds=%d", *pprofURL, int(d.Seconds())), *cpuprofile) })
		time.Sleep(100 * time.Millisecond)
	}
	res := harness.Run(context.Background(), *workers, *d, 0, newWorker, startProfile)
	profiled.Wait()
	if profErr != nil {
		return profErr
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "tool load %s: %d errors, first: %v\n", *kind, res.Errors, res.FirstErr)
	}
	fmt.Printf("%s_rps %.1f\n%s_p99_ms %.3f\n%s_errors %d\n", *prefix, res.RPS(), *prefix, ms(res.Percentile(0.99)), *prefix, res.Errors)
	return nil
}

// prepare gets an access token of alice (password grant through mezzo)
// from the real server and writes, in dir: access_token, and the real
// server's answers that the bare server repeats byte for byte:
// profile.json (GET /profile/ with that token), introspect.json (its
// introspection by ci-robot) and token.json (a client_credentials token).
func prepare(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	base := fs.String("url", "", "server base URL")
	dir := fs.String("dir", "", "output directory")
	fs.Parse(args)
	c := harness.NewClient(*base)
	t, err := c.PasswordGrant(harness.LocalUser, harness.LocalPass)
	if err != nil {
		return err
	}
	profile, err := c.Profile(t.AccessToken)
	if err != nil {
		return err
	}
	introspection, err := c.Introspect(t.AccessToken)
	if err != nil {
		return err
	}
	tokenBody, err := c.TokenRequestRaw(harness.RobotID, harness.RobotSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		"access_token":    []byte(t.AccessToken),
		"profile.json":    profile,
		"introspect.json": introspection,
		"token.json":      tokenBody,
	} {
		if err := os.WriteFile(filepath.Join(*dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// fetch writes the body of GET url to path.
func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
