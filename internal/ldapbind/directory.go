package ldapbind

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"

	"github.com/glauth/glauth/v2/pkg/config"
	"github.com/glauth/glauth/v2/pkg/handler"
	glauthldap "github.com/glauth/ldap"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace/noop"
)

// DirectoryUser is a person of the embedded directory.
type DirectoryUser struct {
	Name         string
	PasswordHash string // a bcrypt hash
	Mail         string
	GivenName    string
	SN           string
	UIDNumber    int
	Groups       []string // the first is the primary group
	Search       bool     // may search the directory (a service account)
}

// DirectoryGroup is a posixGroup of the embedded directory.
type DirectoryGroup struct {
	Name string
	GID  int
}

// DirectoryConfig is the seed of the embedded directory.
type DirectoryConfig struct {
	Listen string // host:port; port 0 picks a free port
	BaseDN string
	Groups []DirectoryGroup
	Users  []DirectoryUser
	Logger *slog.Logger
}

// Directory is a glauth LDAP server running in this process. glauth names
// a user cn=<name>,ou=<primary group>,ou=users,<base DN> and answers
// searches only for users with the search capability.
//
// It is assembled from glauth's config handler and LDAP server rather
// than glauth's server.NewServer, which listens by address only and hides
// the server: here it serves a listener we opened (port 0 works, a busy
// port is an error at once) and answers the Who-am-I operation.
//
// Close stops it and Restart starts it again on the same address, as a
// directory that goes down and comes back.
type Directory struct {
	cfg     DirectoryConfig
	addr    string // host:port, fixed at the first start
	handler handler.Handler

	mu   sync.Mutex // guards srv and done
	srv  *glauthldap.Server
	done chan struct{} // closed when srv has stopped serving
}

// whoAmIOID is the Who-am-I extended operation (RFC 4532) of ldapwhoami.
const whoAmIOID = "1.3.6.1.4.1.4203.1.11.3"

// StartDirectory starts glauth on cfg.Listen and returns once it accepts
// connections.
func StartDirectory(ctx context.Context, cfg DirectoryConfig) (*Directory, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gcfg, err := glauthConfig(cfg)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("ldapbind: embedded directory: %w", err)
	}
	gcfg.LDAP.Listen = ln.Addr().String()

	zl := zerolog.New(slogWriter{cfg.Logger}).Level(zerolog.WarnLevel)
	tracer := noop.NewTracerProvider().Tracer("glauth")
	h := handler.NewConfigHandler(
		handler.Backend(gcfg.Backends[0]),
		handler.Logger(&zl),
		handler.Config(gcfg),
		handler.LDAPHelper(handler.NewLDAPOpsHelper(tracer)),
		handler.Monitor(noMonitor{}),
		handler.Tracer(tracer),
	)
	d := &Directory{cfg: cfg, addr: ln.Addr().String(), handler: h}
	d.serve(ln)
	return d, nil
}

// serve starts a glauth server on ln; d.mu is held or d is not shared yet.
func (d *Directory) serve(ln net.Listener) {
	srv := glauthldap.NewServer()
	srv.EnforceLDAP = true
	srv.BindFunc("", d.handler)
	srv.SearchFunc("", d.handler)
	srv.CloseFunc("", d.handler)
	srv.ExtendedFunc("", whoAmI{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	d.srv, d.done = srv, done
}

// Restart starts a stopped directory again, on the same address and with
// the same seed. Restarting a running directory does nothing.
func (d *Directory) Restart(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.srv != nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", d.addr)
	if err != nil {
		return fmt.Errorf("ldapbind: restart the embedded directory: %w", err)
	}
	d.serve(ln)
	return nil
}

// whoAmI answers the Who-am-I operation with success, so ldapwhoami works
// after a bind. glauth's LDAP server cannot send a response value, so
// ldapwhoami prints "Result: Success (0)" rather than the DN: the bind is
// what proved the password.
type whoAmI struct{}

func (whoAmI) Extended(boundDN string, req glauthldap.ExtendedRequest, _ net.Conn) (glauthldap.LDAPResultCode, error) {
	// The request's name is unexported; reflect reads it without unsafe.
	if reflect.ValueOf(req).FieldByName("requestName").String() == whoAmIOID {
		return glauthldap.LDAPResultSuccess, nil
	}
	return glauthldap.LDAPResultProtocolError, nil
}

// Addr is the host:port the directory listens on.
func (d *Directory) Addr() string { return d.addr }

// URL is the ldap:// URL of the directory.
func (d *Directory) URL() string { return "ldap://" + d.Addr() }

// UserDN is the DN glauth gives the user name.
func (d *Directory) UserDN(name string) string {
	for _, u := range d.cfg.Users {
		if u.Name == name && len(u.Groups) > 0 {
			return fmt.Sprintf("cn=%s,ou=%s,ou=users,%s", name, u.Groups[0], d.cfg.BaseDN)
		}
	}
	return ""
}

// ClientConfig is the configuration of a client that finds users in this
// directory by search-then-bind as serviceAccount.
func (d *Directory) ClientConfig(serviceAccount string) (Config, error) {
	for _, u := range d.cfg.Users {
		if u.Name == serviceAccount {
			if !u.Search {
				return Config{}, fmt.Errorf("ldapbind: service account %q has no search capability", serviceAccount)
			}
			return Config{
				URL:        d.URL(),
				BaseDN:     "ou=users," + d.cfg.BaseDN,
				UserFilter: "(cn={username})",
				BindDN:     d.UserDN(serviceAccount),
			}, nil
		}
	}
	return Config{}, fmt.Errorf("ldapbind: no service account %q in the directory", serviceAccount)
}

// Close stops the directory listening. Connections already open end when
// their clients close them. Closing a stopped directory does nothing.
func (d *Directory) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.srv == nil {
		return nil
	}
	d.srv.Quit <- true
	<-d.done
	d.srv, d.done = nil, nil
	return nil
}

func glauthConfig(cfg DirectoryConfig) (*config.Config, error) {
	if cfg.BaseDN == "" {
		return nil, errors.New("ldapbind: embedded directory needs a base DN")
	}
	gids := map[string]int{}
	c := &config.Config{
		LDAP: config.LDAP{Enabled: true},
		Backends: []config.Backend{{
			BaseDN:             strings.ToLower(cfg.BaseDN),
			Datastore:          "config",
			NameFormat:         "cn",
			NameFormatAsArray:  []string{"cn"},
			GroupFormat:        "ou",
			GroupFormatAsArray: []string{"ou"},
		}},
	}
	c.Backend = c.Backends[0]
	for _, g := range cfg.Groups {
		gids[g.Name] = g.GID
		c.Groups = append(c.Groups, config.Group{Name: g.Name, GIDNumber: g.GID, UnixID: g.GID})
	}
	for _, u := range cfg.Users {
		if len(u.Groups) == 0 {
			return nil, fmt.Errorf("ldapbind: directory user %q has no group", u.Name)
		}
		gu := config.User{
			Name:       u.Name,
			PassBcrypt: hex.EncodeToString([]byte(u.PasswordHash)),
			Mail:       u.Mail,
			GivenName:  u.GivenName,
			SN:         u.SN,
			UIDNumber:  u.UIDNumber,
			UnixID:     u.UIDNumber,
		}
		for i, g := range u.Groups {
			gid, ok := gids[g]
			if !ok {
				return nil, fmt.Errorf("ldapbind: directory user %q: unknown group %q", u.Name, g)
			}
			if i == 0 {
				gu.PrimaryGroup = gid
			} else {
				gu.OtherGroups = append(gu.OtherGroups, gid)
			}
		}
		if u.Search {
			gu.Capabilities = []config.Capability{{Action: "search", Object: "*"}}
		}
		c.Users = append(c.Users, gu)
	}
	return c, nil
}

// noMonitor discards glauth's metrics; without a monitor its first
// request dereferences a nil pointer.
type noMonitor struct{}

func (noMonitor) SetResponseTimeMetric(map[string]string, float64) error { return nil }
func (noMonitor) SetLDAPMetric(map[string]string, float64) error         { return nil }

// slogWriter turns glauth's zerolog JSON lines into slog records, so the
// output has one format.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		w.log.Warn(strings.TrimSpace(string(p)), "component", "glauth")
		return len(p), nil
	}
	msg, _ := rec["message"].(string)
	level := slog.LevelInfo
	switch rec["level"] {
	case "warn":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	case "debug", "trace":
		level = slog.LevelDebug
	}
	attrs := []any{"component", "glauth"}
	for k, v := range rec {
		if k != "message" && k != "level" && k != "time" {
			attrs = append(attrs, k, v)
		}
	}
	w.log.Log(context.Background(), level, msg, attrs...)
	return len(p), nil
}
