package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Certificates for TLS tests come from internal/testcerts (generated per
// test into its temporary directory); NodeOptions.TLS takes them.

// waitHTTPWith is WaitHTTP through client, which for a TLS node carries
// the CA and perhaps a client certificate.
func waitHTTPWith(ctx context.Context, client *http.Client, url string, d time.Duration) error {
	if client == http.DefaultClient {
		return WaitHTTP(ctx, url, d)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
