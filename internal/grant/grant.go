// Package grant holds the values the authorize, token and profile packages
// exchange, so that none of them imports another.
package grant

import (
	"errors"
	"time"
)

// ErrInvalidToken is returned for an access token that is unknown,
// expired or revoked.
var ErrInvalidToken = errors.New("invalid token")

// CodeRequest is an approved authorization request, from which the token
// package issues an authorization code.
type CodeRequest struct {
	ClientID            string
	RedirectURI         string // as the client sent it; "" when it sent none
	Scope               string // space-separated, already validated
	UserID              int64
	Username            string
	CodeChallenge       string // PKCE; "" without PKCE
	CodeChallengeMethod string // "S256" or "plain"; "" without PKCE
}

// Access describes a valid access token.
type Access struct {
	ClientID  string
	Scope     string // space-separated
	UserID    int64  // 0 for a client_credentials token, which has no user
	Username  string
	IssuedAt  time.Time
	ExpiresAt time.Time
}
