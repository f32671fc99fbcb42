package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// figures are the "key value" lines of a results file, and the Go
// benchmarks' ns/op and custom metrics, keyed "BenchmarkName" and
// "BenchmarkName:unit" (without the -GOMAXPROCS suffix).
type figures map[string]float64

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// add records a figure. A load figure given again (another round) keeps
// the best round's: the highest throughput, the lowest latency; error and
// request counts add up.
func (f figures) add(k string, v float64) {
	old, seen := f[k]
	switch {
	case !seen:
		f[k] = v
	case strings.HasSuffix(k, "_rps"):
		f[k] = max(old, v)
	case strings.HasSuffix(k, "_ms") && !strings.HasPrefix(k, "startup") && !strings.HasPrefix(k, "bare_startup"):
		f[k] = min(old, v)
	case strings.HasSuffix(k, "_errors"), strings.HasSuffix(k, "_requests"):
		f[k] = old + v
	default:
		f[k] = v
	}
}

func readFigures(paths ...string) (figures, error) {
	f := figures{}
	for _, p := range paths {
		file, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := benchLine.FindStringSubmatch(line); m != nil {
				fields := strings.Fields(m[2])
				for i := 0; i+1 < len(fields); i += 2 {
					v, err := strconv.ParseFloat(fields[i], 64)
					if err != nil {
						continue
					}
					if fields[i+1] == "ns/op" {
						f[m[1]] = v
					} else {
						f[m[1]+":"+fields[i+1]] = v
					}
				}
				continue
			}
			k, v, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				f.add(k, x)
			}
		}
		file.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// report prints the figures table of bench/README.md from a results file
// and the Go benchmarks' output.
func report(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: tool report RESULTS [GOBENCH...]")
	}
	f, err := readFigures(args...)
	if err != nil {
		return err
	}
	cpus := f["cpus"]
	if cpus == 0 {
		cpus = 1
	}
	r := &table{f: f, warned: map[string]bool{}}
	fmt.Printf("ircam-auth bench: %.0f CPUs, bcrypt cost %.0f; HTTP load: %s, %.0f connections, %s s per run, best of %.0f rounds\n\n",
		cpus, f["bcrypt_cost"], loadTool(f), f["connections"], num(f["duration_s"]), f["rounds"])
	fmt.Println("| figure | ircam-auth | reference, same run | ratio | target |")
	fmt.Println("|---|---|---|---|---|")

	for _, e := range []struct {
		key, name, target string
		min               float64 // of the ratio to bare; 0: no verdict
	}{
		{"profile", "`GET /profile/`", "≥ 60%", 0.60},
		{"introspect", "`POST /o/introspect/`", "≥ 60%", 0.60},
		{"token", "`POST /o/token/` client_credentials", "—", 0},
	} {
		r.ratioRow(e.name+" throughput (req/s)", "real_"+e.key+"_rps", "bare_"+e.key+"_rps", false, e.target, e.min)
		r.ratioRow(e.name+" p99 latency (ms)", "real_"+e.key+"_p99_ms", "bare_"+e.key+"_p99_ms", true, "—", 0)
		r.ratioRow(e.name+" throughput, `--log-level warn`", "quiet_"+e.key+"_rps", "bare_"+e.key+"_rps", false, "—", 0)
	}

	cc, rf := f["BenchmarkTokenClientCredentials:tokens/s"], f["BenchmarkTokenRefresh:tokens/s"]
	if cc > 0 {
		fmt.Printf("| `POST /o/token/` client_credentials, Go client (tokens/s) | %s | | | — |\n", num(cc))
	}
	if rf > 0 {
		fmt.Printf("| `POST /o/token/` refresh_token (rotating), Go client (tokens/s) | %s | client_credentials %s | %s | — |\n", num(rf), num(cc), pctOf(rf, cc))
	}

	bc := f["BenchmarkBcryptCompare"] // ns per compare, one core
	bcPar := f["BenchmarkBcryptCompareParallel:compares/s"]
	flows := f["BenchmarkAuthCodeFlow:flows/s"]
	if bc > 0 && flows > 0 {
		perCore := flows / cpus
		limit := 1e9 / bc
		fmt.Printf("| authorization code flow, alice (flows/s per core) | %s (%s in all) | 1/bcrypt = %s/s (one compare %s ms) | %s | ≥ 80%% %s |\n",
			num(perCore), num(flows), num(limit), num(bc/1e6), pctOf(perCore, limit), verdict(perCore/limit >= 0.80))
		if bcPar > 0 {
			fmt.Printf("| authorization code flow, all cores (flows/s) | %s | bcrypt on all cores at once %s/s | %s | — |\n",
				num(flows), num(bcPar), pctOf(flows, bcPar))
		}
	}
	for _, e := range []struct{ key, name string }{
		{"BenchmarkLDAPLogin/glauth-embedded", "LDAP login of bob, embedded glauth (as the server seeds it)"},
		{"BenchmarkLDAPLogin/glauth-ldaptest", "LDAP login of bob, glauth of ldaptest (bcrypt cost 4)"},
		{"BenchmarkLDAPLogin/slapd", "LDAP login of bob, OpenLDAP slapd ({SSHA})"},
		{"BenchmarkPasswordGrant/ldap-bob-embedded-glauth", "password grant of bob through the server (ms)"},
		{"BenchmarkPasswordGrant/local-alice", "password grant of alice through the server (ms)"},
	} {
		if v, ok := f[e.key]; ok {
			ref := ""
			ratio := ""
			if bc > 0 {
				ref = "one bcrypt " + num(bc/1e6) + " ms"
				ratio = fmt.Sprintf("%.2f× a bcrypt", v/bc)
			}
			name := e.name
			if !strings.HasSuffix(name, "(ms)") {
				name += " (ms)"
			}
			fmt.Printf("| %s | %s | %s | %s | — |\n", name, num(v/1e6), ref, ratio)
		}
	}

	if v, ok := f["startup_healthz_median_ms"]; ok {
		fmt.Printf("| start → `/healthz` 200, median of %.0f (ms) | %s (min %s, p90 %s; \"ready\" line at %s) | bare net/http %s | %s | < 150 ms %s |\n",
			f["startup_starts"], num(v), num(f["startup_healthz_min_ms"]), num(f["startup_healthz_p90_ms"]),
			num(f["startup_ready_median_ms"]), num(f["bare_startup_healthz_median_ms"]),
			fmt.Sprintf("%.0f× bare", v/max(f["bare_startup_healthz_median_ms"], 0.001)), verdict(v < 150))
	}
	if v, ok := f["mem_idle_rss_kb"]; ok {
		fmt.Printf("| memory idle: VmRSS / VmHWM (MiB) | %s / %s | | | — |\n", mib(v), mib(f["mem_idle_hwm_kb"]))
		per := (f["mem_tokens_rss_kb"] - v) * 1024 / max(f["mem_tokens"], 1)
		fmt.Printf("| memory after %s client_credentials tokens: VmRSS / VmHWM (MiB) | %s / %s | idle | ≈ %.0f bytes per token | — |\n",
			num(f["mem_tokens"]), mib(f["mem_tokens_rss_kb"]), mib(f["mem_tokens_hwm_kb"]), per)
	}
	for _, k := range r.errs {
		fmt.Printf("\nwarning: %s\n", k)
	}
	return nil
}

type table struct {
	f      figures
	errs   []string
	warned map[string]bool // run prefixes already checked
}

// checkErrors adds a warning when the load run of a figure (for example
// real_profile of real_profile_rps) had failed requests, once per run: its
// throughput counts only the answers that succeeded.
func (t *table) checkErrors(key string) {
	run := strings.TrimSuffix(strings.TrimSuffix(key, "_rps"), "_p99_ms")
	if t.warned[run] {
		return
	}
	t.warned[run] = true
	if n := t.f[run+"_errors"]; n > 0 {
		t.errs = append(t.errs, fmt.Sprintf("%s: %.0f failed requests (non-2xx or socket errors)", run, n))
	}
}

// ratioRow prints a row of a figure and its reference, bare net/http, if
// the figure was measured. lowerIsBetter rows (latencies) show
// figure/reference as "N× bare"; others figure/reference in percent, with
// a verdict when min > 0.
func (t *table) ratioRow(name, key, refKey string, lowerIsBetter bool, target string, min float64) {
	v, ok := t.f[key]
	if !ok {
		return
	}
	ref := t.f[refKey]
	ratio := ""
	if ref > 0 && v > 0 {
		if lowerIsBetter {
			ratio = fmt.Sprintf("%.1f× bare", v/ref)
		} else {
			ratio = pctOf(v, ref)
			if min > 0 {
				target += " " + verdict(v/ref >= min)
			}
		}
	}
	t.checkErrors(key)
	t.checkErrors(refKey)
	fmt.Printf("| %s | %s | bare net/http %s | %s | %s |\n", name, num(v), num(ref), ratio, target)
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func pctOf(v, ref float64) string {
	if ref <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*v/ref)
}

func mib(kb float64) string { return fmt.Sprintf("%.1f", kb/1024) }

// num prints a figure with three significant digits or so.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func loadTool(f figures) string {
	if f["wrk"] == 1 {
		return "wrk"
	}
	return "Go load generator"
}
