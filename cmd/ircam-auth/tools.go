package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ircam/ircam-auth/internal/fixtures"
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
