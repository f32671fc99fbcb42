package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ircam/ircam-auth/internal/fixtures"
	"github.com/ircam/ircam-auth/internal/ldapbind"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// hashPassword prints the bcrypt hash of a password read from stdin, or
// asked for at a prompt when stdin is a terminal.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", fixtures.DefaultBcryptCost, "bcrypt cost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var pw []byte
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return fmt.Errorf("hash-password: %w", err)
		}
		pw = b
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("hash-password: %w", err)
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	if len(pw) == 0 {
		return errors.New("hash-password: empty password")
	}
	h, err := bcrypt.GenerateFromPassword(pw, *cost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}

// checkFixtures validates a fixture file and says what it holds.
func checkFixtures(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: ircam-auth check-fixtures FILE")
	}
	// Validation does not need slow hashes.
	f, err := fixtures.Load(args[0], bcrypt.MinCost)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok: %d clients, %d users, %d directory entries\n",
		args[0], len(f.Clients), len(f.Users), len(f.Directory.Entries))
	return nil
}

// glauthConfig prints the TOML configuration of a standalone glauth
// server seeded like the embedded directory (docker-compose.yml).
func glauthConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glauth-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("fixtures", getenv(envName("fixtures")), "fixture file; empty: the built-in default")
	listen := fs.String("listen", "0.0.0.0:3893", "listen address written into the configuration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Directory entries are hashed at fixtures.DirectoryBcryptCost whatever
	// the users' cost: the users' hashes are not printed, so hash them cheaply.
	f, err := loadFixtures(config{Fixtures: *path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		return err
	}
	dcfg, _ := ldapbind.SeedFromFixtures(f.Directory)
	return ldapbind.WriteGlauthConfig(stdout, dcfg, *listen)
}

// healthcheck exits 0 when the server at --listen (or IRCAM_AUTH_LISTEN)
// answers /healthz with 200: the container's HEALTHCHECK, and a way for CI
// scripts to wait for the server without curl.
func healthcheck(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	def := getenv(envName("listen"))
	if def == "" {
		def = "127.0.0.1:9000"
	}
	listen := fs.String("listen", def, "address the server listens on")
	wait := fs.Duration("wait", 0, "keep trying this long before failing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("healthcheck: --listen %q: %w", *listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(*wait)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(stdout, "%s: %s\n", url, strings.TrimSpace(string(body)))
				return nil
			}
			err = fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("healthcheck: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
