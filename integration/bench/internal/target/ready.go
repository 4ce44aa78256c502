package target

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// WaitMemcached waits until memcached at addr answers "version".
func WaitMemcached(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, err = io.WriteString(conn, "version\r\n")
			if err == nil {
				var line string
				line, err = bufio.NewReader(conn).ReadString('\n')
				if err == nil && !strings.HasPrefix(line, "VERSION") {
					err = fmt.Errorf("unexpected %q", line)
				}
			}
			conn.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("memcached %s not ready: %v", addr, last)
}

// WaitReady waits for readyURL (if any) to answer 200, then for the SIP
// address to answer an OPTIONS over UDP.
func WaitReady(ctx context.Context, p *procs.Proc, readyURL, sip string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited: %v", p.Name, p.Err())
		}
		last = nil
		if readyURL != "" {
			cl := http.Client{Timeout: time.Second}
			resp, err := cl.Get(readyURL)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %s", readyURL, resp.Status)
				}
			}
			last = err
		}
		if last == nil {
			if last = sipOptions(sip); last == nil {
				return nil
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready at %s after %v: %v", p.Name, sip, d, last)
}

// sipOptions sends one OPTIONS to the server itself and waits for any
// final response.
func sipOptions(addr string) error {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	n := time.Now().UnixNano()
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-sb-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@localhost>;tag=%d\r\nTo: <sip:%s>\r\nCall-ID: sb-%d@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		addr, local, n, n, addr, n)
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo([]byte(req), to); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 8192)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("OPTIONS: %w", err)
		}
		if s := string(buf[:n]); strings.HasPrefix(s, "SIP/2.0 ") && !strings.HasPrefix(s, "SIP/2.0 1") {
			return nil
		}
	}
}
