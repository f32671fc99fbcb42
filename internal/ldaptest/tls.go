package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSInfo says how to reach a slapd started by StartSlapdTLS.
type TLSInfo struct {
	// StartTLSURL is ldap://127.0.0.1:port, where clients upgrade with
	// StartTLS (plain operations are served too).
	StartTLSURL string
	// LDAPSURL is ldaps://127.0.0.1:port, TLS from the first byte.
	LDAPSURL string
	// CAFile is the PEM certificate of the throw-away CA that signed the
	// server's certificate (SANs: IP 127.0.0.1, DNS localhost).
	CAFile string
}

// tlsFiles are the PEM files slapd's TLS is configured with.
type tlsFiles struct {
	caCert, cert, key string
}

// UntrustedCAFile writes the PEM certificate of a fresh throw-away CA, one
// that signed no server's certificate, under t.TempDir() and returns its
// path: a client trusting only it must refuse every test server.
func UntrustedCAFile(t testing.TB) string {
	t.Helper()
	ca, err := newCA("ircam-auth ldaptest untrusted CA")
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	path := filepath.Join(t.TempDir(), "untrusted-ca.pem")
	if err := writePEM(path, "CERTIFICATE", ca.der, 0o644); err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	return path
}

// writeServerTLS generates a throw-away CA and a server certificate for
// 127.0.0.1 and localhost signed by it, and writes the CA certificate, the
// server certificate and its key (mode 0600) as PEM under dir.
func writeServerTLS(dir string) (tlsFiles, error) {
	ca, err := newCA("ircam-auth ldaptest CA")
	if err != nil {
		return tlsFiles{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tlsFiles{}, fmt.Errorf("server key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return tlsFiles{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tlsFiles{}, fmt.Errorf("server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tlsFiles{}, fmt.Errorf("server key: %w", err)
	}
	f := tlsFiles{
		caCert: filepath.Join(dir, "ca.pem"),
		cert:   filepath.Join(dir, "server.pem"),
		key:    filepath.Join(dir, "server-key.pem"),
	}
	if err := writePEM(f.caCert, "CERTIFICATE", ca.der, 0o644); err != nil {
		return tlsFiles{}, err
	}
	if err := writePEM(f.cert, "CERTIFICATE", der, 0o644); err != nil {
		return tlsFiles{}, err
	}
	if err := writePEM(f.key, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return tlsFiles{}, err
	}
	return f, nil
}

// ca is a throw-away certificate authority.
type ca struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCA(name string) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return &ca{cert: cert, der: der, key: key}, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial number: %w", err)
	}
	return n, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
