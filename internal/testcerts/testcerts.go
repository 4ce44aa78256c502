// Package testcerts makes throwaway certificates for tests: a CA, a
// server certificate for 127.0.0.1, ::1 and localhost, and client
// certificates, written as PEM files into the test's temporary directory.
// No key is ever committed, and none outlives its test.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are the files Generate wrote, and the CA as a pool.
type Certs struct {
	Dir        string
	CAFile     string // the CA certificate (PEM): --tls-client-ca, --ca
	ServerCert string // signed by the CA, for 127.0.0.1, ::1, localhost
	ServerKey  string
	ClientCert string // signed by the CA, for client authentication
	ClientKey  string
	// RogueCert and RogueKey are a client certificate from another CA,
	// which a node trusting CAFile must refuse.
	RogueCert string
	RogueKey  string
	CA        *x509.CertPool
}

// Generate writes a fresh set into t.TempDir().
func Generate(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{Dir: dir}
	ca, caKey := newCA(t, "locsvc test CA")
	c.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	c.CA = x509.NewCertPool()
	c.CA.AddCert(ca)

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "locsvc test server"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	c.ServerCert, c.ServerKey = issue(t, dir, "server", server, ca, caKey)
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "locsvc test client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	c.ClientCert, c.ClientKey = issue(t, dir, "client", client, ca, caKey)
	rogueCA, rogueKey := newCA(t, "some other CA")
	rogue := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "rogue client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	c.RogueCert, c.RogueKey = issue(t, dir, "rogue", rogue, rogueCA, rogueKey)
	return c
}

// ClientTLS trusts the CA and, with withCert, presents the client
// certificate.
func (c *Certs) ClientTLS(t testing.TB, withCert bool) *tls.Config {
	t.Helper()
	conf := &tls.Config{RootCAs: c.CA, MinVersion: tls.VersionTLS12}
	if withCert {
		conf.Certificates = []tls.Certificate{c.pair(t, c.ClientCert, c.ClientKey)}
	}
	return conf
}

// ServerTLS serves the server certificate, for in-process servers.
func (c *Certs) ServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{c.pair(t, c.ServerCert, c.ServerKey)}, MinVersion: tls.VersionTLS12}
}

func (c *Certs) pair(t testing.TB, cert, key string) tls.Certificate {
	t.Helper()
	p, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// issue signs tmpl with the CA and writes NAME.pem and NAME-key.pem.
func issue(t testing.TB, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", pkcs8)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
