package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// goUA is a SIP user agent written for a test, over one UDP socket or one
// TCP connection: it sends requests and answers as a test spells them and
// reads what arrives, so that a test can check every header a node sends.
// sipp and JsSIP stand for real phones elsewhere; this one is for the
// protocol corners they do not reach (two flows of one instance, forged
// tokens, GRUUs of several instances).
type goUA struct {
	t      *testing.T
	udp    *net.UDPConn
	to     *net.UDPAddr // the node, over UDP
	stream net.Conn
	r      *bufio.Reader
}

func udpUA(t *testing.T, node string) *goUA {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to, err := net.ResolveUDPAddr("udp", node)
	if err != nil {
		t.Fatal(err)
	}
	return &goUA{t: t, udp: c, to: to}
}

func tcpUA(t *testing.T, node string) *goUA {
	t.Helper()
	c, err := net.Dial("tcp", node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &goUA{t: t, stream: c, r: bufio.NewReader(c)}
}

func (u *goUA) local() string {
	if u.udp != nil {
		return u.udp.LocalAddr().String()
	}
	return u.stream.LocalAddr().String()
}

func (u *goUA) transport() string {
	if u.udp != nil {
		return "UDP"
	}
	return "TCP"
}

func (u *goUA) send(text string) {
	u.t.Helper()
	var err error
	if u.udp != nil {
		_, err = u.udp.WriteToUDP([]byte(text), u.to)
	} else {
		_, err = u.stream.Write([]byte(text))
	}
	if err != nil {
		u.t.Fatal(err)
	}
}

// recv reads the next message, or nil when none comes within d.
func (u *goUA) recv(d time.Duration) sip.Message {
	u.t.Helper()
	var raw []byte
	if u.udp != nil {
		buf := make([]byte, 65535)
		u.udp.SetReadDeadline(time.Now().Add(d))
		n, err := u.udp.Read(buf)
		if err != nil {
			return nil
		}
		raw = buf[:n]
	} else {
		u.stream.SetReadDeadline(time.Now().Add(d))
		var err error
		if raw, err = readStreamMessage(u.r); err != nil {
			return nil
		}
	}
	m, err := sip.ParseMessage(raw)
	if err != nil {
		u.t.Fatalf("unparseable message (%v):\n%s", err, raw)
	}
	return m
}

// readStreamMessage reads one message off a SIP stream, skipping
// keep-alive CRLFs.
func readStreamMessage(r *bufio.Reader) ([]byte, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && line == "\r\n" {
			continue
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append([]byte(head.String()), body...), nil
}

// final reads until a final response (requests, like the proxy's ACK,
// are skipped), or nil after d.
func (u *goUA) final(d time.Duration) *sip.Response {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if res, ok := u.recv(time.Until(deadline)).(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
	}
	return nil
}

// request reads until a request of method, or nil after d.
func (u *goUA) request(method sip.RequestMethod, d time.Duration) *sip.Request {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := u.recv(time.Until(deadline))
		if m == nil {
			return nil
		}
		if req, ok := m.(*sip.Request); ok && req.Method == method {
			return req
		}
	}
	return nil
}

// answer sends a response to req.
func (u *goUA) answer(req *sip.Request, code int, reason string) {
	u.t.Helper()
	u.send(sip.NewResponseFromRequest(req, code, reason, nil).String())
}

var uaSeq atomic.Uint64

// text is a request from u: method to ruri, for user's AoR at localhost,
// with extra header lines.
func (u *goUA) text(method, ruri, from, to, callID string, cseq int, extra ...string) string {
	n := uaSeq.Add(1)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK-goua-%d;rport\r\n", u.transport(), u.local(), n)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <%s>;tag=goua%d\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", from, n, to, callID, cseq, method)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// register registers contact (with its parameters) for aor and returns
// the answer.
func (u *goUA) register(aor, contact, callID string, cseq int, extra ...string) *sip.Response {
	u.t.Helper()
	u.send(u.text("REGISTER", "sip:localhost", aor, aor, callID, cseq, append([]string{"Contact: " + contact, "Expires: 600"}, extra...)...))
	res := u.final(5 * time.Second)
	if res == nil {
		u.t.Fatalf("no answer to REGISTER %s", contact)
	}
	return res
}
