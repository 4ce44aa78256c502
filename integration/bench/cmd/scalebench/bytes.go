package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// binder is one kind of phone an AoR registers, the j-th binding of each:
// what it puts in a REGISTER, shaped like what such phones send.
type binder struct {
	what    string
	contact func(i int) string // the Contact header's value
	headers string             // more header lines, each ending in CRLF
}

// binders are the phones of one user, in the order they register: a desk
// phone on UDP behind NAT, a mobile app registering an RFC 5626 flow, a
// desktop softphone.
var binders = []binder{
	{"desk phone (UDP, behind NAT)", func(i int) string {
		return fmt.Sprintf("<sip:+1555%07d@192.168.%d.%d:5060>;expires=3600", i, i/250%250, i%250+1)
	}, "User-Agent: Yealink SIP-T46U 108.86.0.45\r\n"},
	{"mobile app (RFC 5626 flow)", func(i int) string {
		return fmt.Sprintf(`<sip:+1555%07d@10.%d.%d.%d:49152;transport=udp;ob>;expires=3600;+sip.instance="<urn:uuid:6f1c2a9e-%04x-4b7d-9e3a-%012x>";reg-id=1`,
			i, i/62500%250, i/250%250, i%250+1, i%0x10000, i)
	}, "Supported: outbound, path\r\nUser-Agent: Acrobits Softphone 6.12\r\n"},
	{"desktop softphone", func(i int) string {
		return fmt.Sprintf("<sip:+1555%07d@172.16.%d.%d:5062;rinstance=%016x>;expires=3600", i, i/250%250, i%250+1, uint64(i)*0x9e3779b97f4a7c15)
	}, "User-Agent: Zoiper rv2.10.20.3\r\n"},
}

// bytesDomain is the SIP domain of the bytes phase's users.
const bytesDomain = "voip.example.com"

// bytesPerBinding registers -bytes-aors users over SIP through one node
// (registrar mode, R=1) into one memcached: with one phone each, then on
// a fresh memcached with two, then with three; memcached's counters are
// read after each. Fresh servers keep one case's slab pages out of the
// next one's figures.
func (b *bench) bytesPerBinding(ctx context.Context) error {
	for k := 1; k <= len(binders); k++ {
		row, err := b.bytesCase(ctx, k)
		if err != nil {
			return err
		}
		b.res.bytes = append(b.res.bytes, row)
	}
	return nil
}

// bytesCase registers the first k phones of every user.
func (b *bench) bytesCase(ctx context.Context, k int) (bytesRow, error) {
	var addrs [5]string
	for i := range addrs {
		p, err := procs.FreePort()
		if err != nil {
			return bytesRow{}, err
		}
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	mcAddr, grpcAddr, httpAddr, gossip, sip := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	_, mcPort, _ := net.SplitHostPort(mcAddr)
	name := fmt.Sprintf("bytes%d", k)
	mc, err := children.Start("memcached "+name, filepath.Join(b.dir, "memcached-"+name+".log"), b.dir, nil, "memcached",
		"-u", "nobody", "-l", "127.0.0.1", "-p", mcPort, "-U", "0", "-m", "256", "-t", "1")
	if err != nil {
		return bytesRow{}, err
	}
	defer mc.Stop()
	node, err := children.Start("locsvc "+name, filepath.Join(b.dir, "locsvc-"+name+".log"), b.dir, nil, b.c.locsvc,
		"serve", "--node-id", name, "--grpc", grpcAddr, "--http", httpAddr, "--gossip", gossip, "--sip", sip,
		"--memcached", mcAddr, "--replicas", "1", "--sip-mode", "registrar", "--register-rate", "0",
		"--domain", bytesDomain, "--log-level", "warn")
	if err != nil {
		return bytesRow{}, err
	}
	defer node.Stop()
	if err := waitHTTP(ctx, "http://"+httpAddr+"/readyz", 30*time.Second); err != nil {
		return bytesRow{}, err
	}
	n := b.c.bytesAoRs
	for j, bd := range binders[:k] {
		failed := b.parallel(ctx, n, 32, func(ctx context.Context, i int) error { return register(ctx, sip, i, j, bd) })
		if failed > 0 {
			return bytesRow{}, fmt.Errorf("%d of %d REGISTERs of the %s failed", failed, n, bd.what)
		}
	}
	st, err := ringstore.ServerStats(ctx, nil, mcAddr, "", 5*time.Second)
	if err != nil {
		return bytesRow{}, err
	}
	slabs, err := ringstore.ServerStats(ctx, nil, mcAddr, "slabs", 5*time.Second)
	if err != nil {
		return bytesRow{}, err
	}
	if int(st["curr_items"]) != n {
		return bytesRow{}, fmt.Errorf("memcached holds %d items after %d AoRs registered", st["curr_items"], n)
	}
	var chunks uint64
	for key, v := range slabs {
		if cls, ok := strings.CutSuffix(key, ":used_chunks"); ok {
			chunks += v * slabs[cls+":chunk_size"]
		}
	}
	return bytesRow{
		bindings: k, what: phones(k), aors: n,
		item:     float64(st["bytes"]) / float64(n),
		chunk:    float64(chunks) / float64(n),
		malloced: float64(slabs["total_malloced"]) / float64(n),
	}, nil
}

// phones names the first k binders.
func phones(k int) string {
	var out []string
	for _, bd := range binders[:k] {
		out = append(out, bd.what)
	}
	return strings.Join(out, " + ")
}

// register sends binding j of user i and waits for its 200, sending the
// REGISTER again (as a UA retransmits) when no answer comes within a
// second.
func register(ctx context.Context, sipAddr string, i, j int, bd binder) error {
	c, err := net.Dial("udp", sipAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	user := fmt.Sprintf("+1555%07d", i)
	// Each phone has a Call-ID of its own, as different UAs do.
	callID := fmt.Sprintf("%08x-%02x5d-4c7b-a2f3-9b8c6d4e2f1a@%s", i, j, local)
	msg := "REGISTER sip:" + bytesDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + fmt.Sprintf(";rport;branch=z9hG4bK%08x%02x\r\n", i, j) +
		"Max-Forwards: 70\r\n" +
		"From: <sip:" + user + "@" + bytesDomain + fmt.Sprintf(">;tag=%08x%02x\r\n", i, j) +
		"To: <sip:" + user + "@" + bytesDomain + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: " + bd.contact(i) + "\r\n" +
		bd.headers +
		"Expires: 3600\r\n" +
		"Content-Length: 0\r\n\r\n"
	buf := make([]byte, 4096)
	for range 3 {
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		k, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		if line, _, _ := bytes.Cut(buf[:k], []byte("\r\n")); !bytes.HasPrefix(line, []byte("SIP/2.0 200 ")) {
			return fmt.Errorf("REGISTER %s: %s", user, line)
		}
		return nil
	}
	return fmt.Errorf("REGISTER %s: no answer", user)
}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		if err := procs.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
