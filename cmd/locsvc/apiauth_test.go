package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locsvc/locsvc/internal/testcerts"
)

// An API beyond loopback is accepted with client certificates (judged
// from --tls-client-ca before the TLS configuration exists), a token, or
// --api-allow-open, and refused otherwise with the flags named.
func TestServeAPIProtection(t *testing.T) {
	clearEnv(t)
	c := testcerts.Generate(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("a-token-of-enough-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	beyond := []string{"--sip", "", "--grpc", "10.0.0.1:7070", "--http", "10.0.0.1:8080"}
	tlsFiles := []string{"--tls-cert", c.ServerCert, "--tls-key", c.ServerKey}
	for _, tc := range []struct {
		name string
		args []string
		want string // "" accepted
	}{
		{"unprotected", nil, "--api-token FILE"},
		{"TLS without client certificates", tlsFiles, "--tls-client-ca"},
		{"mTLS", append(append([]string(nil), tlsFiles...), "--tls-client-ca", c.CAFile), ""},
		{"token", []string{"--api-token", token}, ""},
		{"token from the environment", nil, ""},
		{"allowed open", []string{"--api-allow-open"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "token from the environment" {
				t.Setenv("LOCSVC_API_TOKEN", token)
			}
			_, err := loadServe(t, append(append([]string(nil), beyond...), tc.args...)...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--grpc")):
				t.Fatalf("err = %v, want one naming --grpc and %s", err, tc.want)
			}
		})
	}
}
