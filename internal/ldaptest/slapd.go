package ldaptest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ircam/ircam-auth/internal/ldapbind"
)

// Where Debian's slapd package puts things.
const (
	debianSlapd      = "/usr/sbin/slapd"
	debianSchemaDir  = "/etc/ldap/schema"
	debianModulePath = "/usr/lib/ldap"
)

// The slapd directory's layout.
const (
	slapdPeopleDN  = "ou=people," + BaseDN
	slapdServiceDN = "uid=ircam-auth,ou=services," + BaseDN
	slapdRootDN    = "cn=admin," + BaseDN
	slapdPeopleGID = 5501
)

const (
	slapdStartTimeout = 10 * time.Second
	slapdStopTimeout  = 5 * time.Second
)

// slapdConf is the slapd.conf of the test directory; %[1]s is the schema
// directory, %[2]s the module path, %[3]s the database directory, %[4]s
// the TLS settings (empty without TLS).
// The service account and each user may read the entries, nobody reads a
// password hash, and anonymous clients may only bind.
const slapdConf = `include %[1]s/core.schema
include %[1]s/cosine.schema
include %[1]s/nis.schema
include %[1]s/inetorgperson.schema

modulepath %[2]s
moduleload back_mdb
%[4]s

# The root DSE and the schema, for clients probing the server.
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
suffix "` + BaseDN + `"
rootdn "` + slapdRootDN + `"
directory %[3]s
maxsize 16777216
dbnosync

access to attrs=userPassword
	by self write
	by anonymous auth
	by * none
access to *
	by self read
	by dn.exact="` + slapdServiceDN + `" read
	by * none
`

// StartSlapd starts a throw-away OpenLDAP slapd on a free loopback port,
// seeded with the service account and People, and stops it when the test
// ends. It skips the test when slapd is not installed (Debian: apt-get
// install slapd ldap-utils); any other failure fails the test.
func StartSlapd(t testing.TB) *Server {
	t.Helper()
	s, _ := startSlapd(t, false)
	return s
}

// StartSlapdTLS is StartSlapd with TLS: slapd serves a certificate for
// 127.0.0.1 and localhost, signed by a throw-away CA, on an ldap:// port
// that offers StartTLS and on an ldaps:// port. The Server's URL and
// configs are the ldap:// port without TLS; TLSInfo has both URLs and the
// CA's certificate file.
func StartSlapdTLS(t testing.TB) (*Server, TLSInfo) {
	t.Helper()
	return startSlapd(t, true)
}

func startSlapd(t testing.TB, withTLS bool) (*Server, TLSInfo) {
	t.Helper()
	bin := findSlapd()
	if bin == "" {
		t.Skip("ldaptest: slapd not found at " + debianSlapd + " nor on PATH; " +
			"install Debian's OpenLDAP server to run these tests: apt-get install slapd ldap-utils")
	}
	dir := t.TempDir()
	var info TLSInfo
	var tlsConf string
	if withTLS {
		f, err := writeServerTLS(dir)
		if err != nil {
			t.Fatalf("ldaptest: %v", err)
		}
		info.CAFile = f.caCert
		tlsConf = fmt.Sprintf("TLSCACertificateFile \"%s\"\nTLSCertificateFile \"%s\"\nTLSCertificateKeyFile \"%s\"\n",
			f.caCert, f.cert, f.key)
	}
	conf, err := writeSlapdFiles(dir, tlsConf)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	// slapd -Ta is slapadd: it loads the entries before slapd starts.
	seed := exec.Command(bin, "-Ta", "-q", "-f", conf, "-l", filepath.Join(dir, "seed.ldif"))
	if out, err := seed.CombinedOutput(); err != nil {
		t.Fatalf("ldaptest: slapadd %s: %v\n%s", conf, err, out)
	}
	// -d keeps slapd in the foreground; level "none" logs only errors.
	// Readiness is probed on the ldap:// port: slapd opens every listener
	// before it serves any.
	addr := freeAddr(t)
	url := "ldap://" + addr
	listen := url
	if withTLS {
		tlsAddr := freeAddr(t)
		for tlsAddr == addr {
			tlsAddr = freeAddr(t)
		}
		info.StartTLSURL, info.LDAPSURL = url, "ldaps://"+tlsAddr
		listen += " " + info.LDAPSURL
	}
	p := &slapdProcess{args: []string{bin, "-d", "none", "-f", conf, "-h", listen}, url: url}
	p.start(t)
	t.Cleanup(func() { p.stop(t) })

	return &Server{
		Name: "slapd",
		URL:  url,
		SearchConfig: ldapbind.Config{
			URL:          url,
			BaseDN:       slapdPeopleDN,
			UserFilter:   "(uid={username})",
			BindDN:       slapdServiceDN,
			BindPassword: Search.Password,
		},
		TemplateConfig: ldapbind.Config{
			URL:            url,
			UserDNTemplate: "uid={username}," + slapdPeopleDN,
		},
		UserDN: func(uid string) string { return "uid=" + ldap.EscapeDN(uid) + "," + slapdPeopleDN },
		Stop:   func() { p.stop(t) },
		Start:  func() { p.start(t) },
	}, info
}

func findSlapd() string {
	if _, err := os.Stat(debianSlapd); err == nil {
		return debianSlapd
	}
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	return ""
}

// writeSlapdFiles writes slapd.conf, with the TLS settings tlsConf, and
// seed.ldif under dir, makes the database directory, and returns the path
// of slapd.conf.
func writeSlapdFiles(dir, tlsConf string) (string, error) {
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		return "", fmt.Errorf("slapd database directory: %w", err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	text := fmt.Sprintf(slapdConf, debianSchemaDir, debianModulePath, db, tlsConf)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("slapd config: %w", err)
	}
	seed, err := seedLDIF()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "seed.ldif"), []byte(seed), 0o600); err != nil {
		return "", fmt.Errorf("slapd seed: %w", err)
	}
	return conf, nil
}

// seedLDIF is the directory's content: the base, ou=people and
// ou=services, the service account and People, with salted SHA-1
// passwords.
func seedLDIF() (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: ircam\no: IRCAM\n\n", BaseDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n", slapdPeopleDN)
	fmt.Fprintf(&b, "dn: ou=services,%s\nobjectClass: organizationalUnit\nou: services\n\n", BaseDN)
	pw, err := ssha(Search.Password)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: %s\nuserPassword: %s\n\n",
		slapdServiceDN, Search.UID, pw)
	for _, p := range People {
		pw, err := ssha(p.Password)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "dn: uid=%s,%s\n", p.UID, slapdPeopleDN)
		b.WriteString("objectClass: inetOrgPerson\nobjectClass: posixAccount\n")
		fmt.Fprintf(&b, "uid: %s\ncn: %s %s\nsn: %s\ngivenName: %s\nmail: %s\n", p.UID, p.GivenName, p.SN, p.SN, p.GivenName, p.Mail)
		fmt.Fprintf(&b, "uidNumber: %d\ngidNumber: %d\nhomeDirectory: /home/%s\nuserPassword: %s\n\n",
			p.UIDNumber, slapdPeopleGID, p.UID, pw)
	}
	return b.String(), nil
}

// ssha is password in OpenLDAP's {SSHA} scheme: SHA-1 of the password and
// a salt, followed by the salt, in base64.
func ssha(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...)), nil
}

// freeAddr returns a loopback address where nothing listens now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ldaptest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// slapdProcess runs slapd in the foreground; it is stopped between stop
// and start. Only the test's goroutine calls start and stop.
type slapdProcess struct {
	args []string
	url  string
	run  *slapdRun // nil when stopped
}

// slapdRun is one run of slapd.
type slapdRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer  // slapd's output; read only once done is closed
	done chan struct{} // closed when slapd has exited
	err  error         // cmd.Wait's error, set before done is closed
}

func (p *slapdProcess) start(t testing.TB) {
	t.Helper()
	if p.run != nil {
		return
	}
	r := &slapdRun{cmd: exec.Command(p.args[0], p.args[1:]...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("ldaptest: start slapd: %v", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	if err := waitReady(p.url, r.done); err != nil {
		r.kill()
		t.Fatalf("ldaptest: slapd on %s: %v (exit: %v)\n%s", p.url, err, r.err, r.out.String())
	}
	p.run = r
}

func (p *slapdProcess) stop(t testing.TB) {
	t.Helper()
	r := p.run
	if r == nil {
		return
	}
	p.run = nil
	select {
	case <-r.done:
		t.Fatalf("ldaptest: slapd on %s exited before it was stopped: %v\n%s", p.url, r.err, r.out.String())
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.kill()
		t.Fatalf("ldaptest: stop slapd: %v\n%s", err, r.out.String())
	}
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("ldaptest: slapd on %s: %v\n%s", p.url, r.err, r.out.String())
		}
	case <-time.After(slapdStopTimeout):
		r.kill()
		t.Fatalf("ldaptest: slapd on %s did not stop within %v of SIGTERM; killed it\n%s",
			p.url, slapdStopTimeout, r.out.String())
	}
}

// kill kills slapd and waits for it to exit.
func (r *slapdRun) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// waitReady waits until the slapd at url answers a search of the root DSE,
// or exits (done is closed), or slapdStartTimeout has passed.
func waitReady(url string, done <-chan struct{}) error {
	deadline := time.Now().Add(slapdStartTimeout)
	for {
		err := probe(url)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return errors.New("slapd exited while starting")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", slapdStartTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func probe(url string) error {
	conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(time.Second)
	_, err = conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 1, false, "(objectClass=*)", []string{"1.1"}, nil))
	return err
}
