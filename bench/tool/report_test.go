package main

import (
	"os"
	"path/filepath"
	"testing"
)

// readFigures keeps each load run's best round and reads the Go
// benchmarks' lines, sub-benchmarks and custom metrics included: a
// mistake here would put a wrong figure in the report, not an error.
func TestReadFigures(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results.txt")
	gobench := filepath.Join(dir, "gobench.txt")
	write(t, results, "cpus 2\n"+
		"real_profile_rps 100.0\nreal_profile_p99_ms 5.0\nreal_profile_errors 1\n"+
		"real_profile_rps 120.0\nreal_profile_p99_ms 6.0\nreal_profile_errors 2\n"+
		"startup_healthz_median_ms 80\nstartup_healthz_median_ms 90\n")
	write(t, gobench, "goos: linux\n"+
		"BenchmarkAuthCodeFlow-2   \t 100\t 2049605 ns/op\t 487.9 flows/s\n"+
		"BenchmarkLDAPLogin/glauth-embedded-2 \t 20\t 2808786 ns/op\n"+
		"BenchmarkBcryptCompare \t 20\t 1073408 ns/op\t 931.6 compares/s\n"+
		"PASS\n")
	f, err := readFigures(results, gobench)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"cpus":                               2,
		"real_profile_rps":                   120, // the best round
		"real_profile_p99_ms":                5,
		"real_profile_errors":                3, // every round's
		"startup_healthz_median_ms":          90,
		"BenchmarkAuthCodeFlow":              2049605,
		"BenchmarkAuthCodeFlow:flows/s":      487.9,
		"BenchmarkLDAPLogin/glauth-embedded": 2808786,
		"BenchmarkBcryptCompare":             1073408,
		"BenchmarkBcryptCompare:compares/s":  931.6,
	} {
		if got, ok := f[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
