package token

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ircam/ircam-auth/internal/grant"
)

// saveDelay is how long the file saver waits after a change before it
// writes the file, so that a burst of changes costs one write. Close
// writes whatever is left.
const saveDelay = 200 * time.Millisecond

// fileVersion is the format of the token file.
const fileVersion = 1

// fileSaver keeps a store's codes and tokens in a file: the whole store,
// as JSON, written to a temporary file in the same directory and renamed
// over the old one, so that a crash leaves the old file or the new one,
// never half of one. The file holds SHA-256 hashes, never a code or token.
type fileSaver struct {
	path string
	log  *slog.Logger

	// changed is guarded by the store's mutex.
	changed  bool
	wake     chan struct{} // capacity 1: a change since the last save
	stop     chan struct{}
	stopped  chan struct{}
	once     sync.Once
	closeErr error
}

func (f *fileSaver) changedLocked() {
	f.changed = true
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// openStore returns a store kept in the file at path, loaded from it
// when it exists. Entries expired at now are dropped. A file that cannot
// be read or parsed, or a directory where it cannot be written, is an
// error naming the file.
func openStore(path string, now time.Time, log *slog.Logger) (*store, error) {
	s := newStore()
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("token: token file %s cannot be read: %w", path, err)
	case len(bytes.TrimSpace(raw)) > 0:
		if err := s.load(raw, now); err != nil {
			return nil, fmt.Errorf("token: token file %s is not a token file of this version (%v); delete it to start with no tokens", path, err)
		}
	}
	s.file = &fileSaver{
		path: path, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	// Write it now: a directory that cannot hold it fails the start, not
	// the first login.
	s.file.changed = true
	if err := s.save(); err != nil {
		return nil, err
	}
	go s.saveLoop()
	return s, nil
}

// saveLoop writes the file saveDelay after a change, until close.
func (s *store) saveLoop() {
	f := s.file
	defer close(f.stopped)
	for {
		select {
		case <-f.stop:
			return
		case <-f.wake:
		}
		select {
		case <-f.stop:
			return
		case <-time.After(saveDelay):
		}
		if err := s.save(); err != nil {
			f.log.Error("token file not saved; retrying at the next change", "file", f.path, "err", err)
		}
	}
}

// close stops the saver and writes what changed since the last save.
func (s *store) close() error {
	f := s.file
	if f == nil {
		return nil
	}
	f.once.Do(func() {
		close(f.stop)
		<-f.stopped
		f.closeErr = s.save()
	})
	return f.closeErr
}

// save writes the store to its file if it changed since the last save.
// On failure the store stays marked as changed.
func (s *store) save() error {
	f := s.file
	s.mu.Lock()
	if !f.changed {
		s.mu.Unlock()
		return nil
	}
	snap := s.snapshotLocked()
	f.changed = false
	s.mu.Unlock()

	// Encoded outside the lock: token requests need not wait for it.
	b, err := json.MarshalIndent(snap, "", "  ")
	if err == nil {
		err = writeFileAtomic(f.path, append(b, '\n'))
	}
	if err != nil {
		s.mu.Lock()
		f.changed = true
		s.mu.Unlock()
		return fmt.Errorf("token: token file %s cannot be written: %w", f.path, err)
	}
	return nil
}

// writeFileAtomic replaces path with data, readable by its owner only.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tokenFile is the JSON form of the file.
type tokenFile struct {
	Version    int         `json:"version"`
	LastFamily uint64      `json:"last_family"`
	Codes      []fileCode  `json:"codes"`
	Tokens     []fileToken `json:"tokens"`
}

type fileCode struct {
	Hash                string    `json:"sha256"`
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri,omitempty"`
	Scope               string    `json:"scope"`
	UserID              int64     `json:"user_id"`
	Username            string    `json:"username"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	ExpiresAt           time.Time `json:"expires_at"`
	Used                bool      `json:"used,omitempty"`
	Family              uint64    `json:"family,omitempty"`
}

type fileToken struct {
	Hash       string    `json:"sha256"`
	Kind       string    `json:"kind"`
	GrantType  string    `json:"grant_type"`
	ClientID   string    `json:"client_id"`
	Scope      string    `json:"scope"`
	UserID     int64     `json:"user_id,omitempty"`
	Username   string    `json:"username,omitempty"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Family     uint64    `json:"family"`
	Pair       string    `json:"pair_sha256,omitempty"`
	GrantScope string    `json:"grant_scope,omitempty"`
}

// snapshotLocked copies the store into the file's form.
func (s *store) snapshotLocked() tokenFile {
	tf := tokenFile{
		Version: fileVersion, LastFamily: s.lastFamily,
		Codes:  make([]fileCode, 0, len(s.codes)),
		Tokens: make([]fileToken, 0, len(s.tokens)),
	}
	for k, c := range s.codes {
		r := c.req
		tf.Codes = append(tf.Codes, fileCode{
			Hash: hex.EncodeToString(k[:]), ClientID: r.ClientID, RedirectURI: r.RedirectURI,
			Scope: r.Scope, UserID: r.UserID, Username: r.Username,
			CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
			ExpiresAt: c.expiresAt, Used: c.used, Family: c.family,
		})
	}
	for k, t := range s.tokens {
		ft := fileToken{
			Hash: hex.EncodeToString(k[:]), Kind: t.kind.String(), GrantType: t.grantType,
			ClientID: t.clientID, Scope: t.scope, UserID: t.userID, Username: t.username,
			IssuedAt: t.issuedAt, ExpiresAt: t.expiresAt, Family: t.family, GrantScope: t.grantScope,
		}
		if t.pair != (key{}) {
			ft.Pair = hex.EncodeToString(t.pair[:])
		}
		tf.Tokens = append(tf.Tokens, ft)
	}
	return tf
}

// load fills an empty store from a file's content, dropping what expired.
func (s *store) load(raw []byte, now time.Time) error {
	var tf tokenFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON document")
	}
	if tf.Version != fileVersion {
		return fmt.Errorf("version %d, want %d", tf.Version, fileVersion)
	}
	s.lastFamily = tf.LastFamily
	for i, c := range tf.Codes {
		k, err := parseKey(c.Hash)
		if err != nil {
			return fmt.Errorf("code %d: %v", i+1, err)
		}
		if c.Family > s.lastFamily {
			s.lastFamily = c.Family
		}
		if !now.Before(c.ExpiresAt) {
			continue
		}
		s.codes[k] = &code{
			req: grant.CodeRequest{
				ClientID: c.ClientID, RedirectURI: c.RedirectURI, Scope: c.Scope,
				UserID: c.UserID, Username: c.Username,
				CodeChallenge: c.CodeChallenge, CodeChallengeMethod: c.CodeChallengeMethod,
			},
			expiresAt: c.ExpiresAt, used: c.Used, family: c.Family,
		}
	}
	for i, t := range tf.Tokens {
		k, err := parseKey(t.Hash)
		if err != nil {
			return fmt.Errorf("token %d: %v", i+1, err)
		}
		r := record{
			grantType: t.GrantType, clientID: t.ClientID, scope: t.Scope,
			userID: t.UserID, username: t.Username,
			issuedAt: t.IssuedAt, expiresAt: t.ExpiresAt,
			family: t.Family, grantScope: t.GrantScope,
		}
		switch t.Kind {
		case kindAccess.String():
			r.kind = kindAccess
		case kindRefresh.String():
			r.kind = kindRefresh
		default:
			return fmt.Errorf("token %d: unknown kind %q", i+1, t.Kind)
		}
		if t.Pair != "" {
			if r.pair, err = parseKey(t.Pair); err != nil {
				return fmt.Errorf("token %d: pair: %v", i+1, err)
			}
		}
		if t.Family > s.lastFamily {
			s.lastFamily = t.Family
		}
		if !now.Before(t.ExpiresAt) {
			continue
		}
		s.tokens[k] = &r
	}
	return nil
}

func parseKey(h string) (key, error) {
	var k key
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("sha256 %q is not 64 hex digits", h)
	}
	copy(k[:], b)
	return k, nil
}

// Close stops saving the token file, after a last save of what changed;
// it is a no-op without a file. Call it once the server no longer
// serves requests: changes after Close are not saved.
func (s *Service) Close() error {
	return s.store.close()
}
