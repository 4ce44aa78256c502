package integration

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kamailio is a Kamailio edge proxy running integration/kamailio/http-style.cfg
// (or sip-style.cfg: KamailioOptions.LocsvcSIP) on a free loopback port (UDP
// and TCP), in the foreground (-DD -E) with a private runtime directory (-Y),
// stopped by PID when the test ends.
type Kamailio struct {
	*Proc
	Addr   string // SIP address, "127.0.0.1:port", UDP and TCP
	Port   int
	Domain string
	Args   []string // the kamailio command line, for failure reports
}

// KamailioOptions configure one edge.
type KamailioOptions struct {
	Name string // process name in logs; default "kamailio"
	// LocsvcHTTP is the host:port of the locsvc node's HTTP/JSON API
	// (Node.HTTP) the edge stores and looks up bindings with.
	LocsvcHTTP string
	// APIToken is the token the node's API requires (-A LOCSVC_TOKEN):
	// the edge sends it with every request.
	APIToken string
	// LocsvcSIP, when set, selects the SIP style (sip-style.cfg): the
	// host:port of the locsvc node's SIP front end (Node.SIP) the edge
	// forwards REGISTERs to and asks where to send calls (redirect mode).
	// LocsvcHTTP is then not needed.
	LocsvcSIP string
	Domain    string // SIP domain served; default "example.com"
	NoPath    bool   // -A WITHOUT_PATH: do not store the edge as Path
	// Config is the config file; default integration/kamailio/http-style.cfg,
	// or sip-style.cfg when LocsvcSIP is set.
	Config string
}

// kamDir is integration/kamailio, found from this file so tests work from
// any working directory.
func kamDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "kamailio")
}

// StartKamailio starts an edge and waits until it answers OPTIONS. A port
// taken between picking and binding is retried with another port.
func StartKamailio(t testing.TB, o KamailioOptions) *Kamailio {
	t.Helper()
	if o.Name == "" {
		o.Name = "kamailio"
	}
	if o.Domain == "" {
		o.Domain = "example.com"
	}
	if o.Config == "" && o.LocsvcSIP != "" {
		o.Config = filepath.Join(kamDir(), "sip-style.cfg")
	}
	if o.Config == "" {
		o.Config = filepath.Join(kamDir(), "http-style.cfg")
	}
	if o.LocsvcHTTP == "" && o.LocsvcSIP == "" {
		t.Fatal("StartKamailio: LocsvcHTTP or LocsvcSIP is required")
	}
	var lastErr error
	for range 3 {
		k, err := startKamailio(t, o)
		if err == nil {
			return k
		}
		lastErr = err
		if !k.Exited() {
			break // running but not answering: retrying will not help
		}
	}
	t.Fatalf("%s did not start: %v", o.Name, lastErr)
	return nil
}

func startKamailio(t testing.TB, o KamailioOptions) (*Kamailio, error) {
	t.Helper()
	port := FreePort(t)
	run := t.TempDir()
	k := &Kamailio{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Domain: o.Domain}
	k.Args = []string{"-DD", "-E", "-Y", run, "-f", o.Config,
		"-A", "SIP_IP=127.0.0.1",
		"-A", "SIP_PORT=" + strconv.Itoa(port),
		"-A", fmt.Sprintf("SIPDOMAIN=%q", o.Domain),
		"-A", fmt.Sprintf("PATH_SECRET=\"%x\"", rand.Uint64()),
	}
	if o.LocsvcHTTP != "" {
		k.Args = append(k.Args, "-A", fmt.Sprintf("LOCSVC_URL=%q", "http://"+o.LocsvcHTTP), "-A", "HTTP_TIMEOUT=2")
	}
	if o.APIToken != "" {
		k.Args = append(k.Args, "-A", fmt.Sprintf("LOCSVC_TOKEN=%q", o.APIToken))
	}
	if o.LocsvcSIP != "" {
		k.Args = append(k.Args, "-A", fmt.Sprintf("LOCSVC_SIP=%q", "sip:"+o.LocsvcSIP), "-A", "LOCSVC_TIMEOUT=2000")
	}
	if o.NoPath {
		k.Args = append(k.Args, "-A", "WITHOUT_PATH")
	}
	k.Proc = Start(t, o.Name+" "+k.Addr, "kamailio", nil, k.Args...)
	// Registered after Start's own cleanup, so it runs first: an orderly
	// SIGTERM lets Kamailio stop its children itself.
	t.Cleanup(func() { k.stop() })

	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if k.Exited() {
			return k, fmt.Errorf("kamailio exited: %s\n%s", strings.Join(k.Args, " "), k.Output())
		}
		if _, err = k.Options(300 * time.Millisecond); err == nil {
			return k, nil
		}
	}
	return k, fmt.Errorf("no answer to OPTIONS at %s: %v\n%s", k.Addr, err, k.Output())
}

// stop ends Kamailio by PID: SIGTERM to the main process, which stops its
// children; if that does not end it, SIGKILL to the process group the
// harness created for it (its children only: Start uses Setpgid).
func (k *Kamailio) stop() {
	if k.Proc == nil {
		return
	}
	pid := k.PID()
	if !k.Exited() {
		_ = k.Signal(syscall.SIGTERM)
		if exited, _ := k.Wait(5 * time.Second); !exited {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			k.Kill()
		}
	}
	// Children that outlived the main process (killed -9) hold the port.
	for range 50 {
		if err := syscall.Kill(-pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
}

// Options sends OPTIONS to the edge itself and returns the final response.
func (k *Kamailio) Options(timeout time.Duration) (string, error) {
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP {local};branch=z9hG4bK-opt-%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:probe@%s>;tag=p%d\r\n"+
		"To: <sip:%s>\r\n"+
		"Call-ID: opt-%d@probe\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n", k.Addr, time.Now().UnixNano(), k.Domain, os.Getpid(), k.Addr, time.Now().UnixNano())
	return kamExchange(k.Addr, req, timeout)
}

// kamExchange sends one SIP request over UDP from a fresh loopback socket
// ("{local}" in req is replaced by its address) and returns the first final
// response, ignoring 1xx. It sends once: callers that need retransmission
// call it again.
func kamExchange(addr, req string, timeout time.Duration) (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	req = strings.ReplaceAll(req, "{local}", c.LocalAddr().String())
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return "", err
	}
	if _, err := c.WriteTo([]byte(req), to); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return "", err
		}
		resp := string(buf[:n])
		if strings.HasPrefix(resp, "SIP/2.0 1") {
			continue
		}
		return resp, nil
	}
}

// kamStatus is the status code of a SIP response ("SIP/2.0 200 OK" -> 200).
func kamStatus(resp string) int {
	f := strings.Fields(resp)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// kamHeaders are the values of every header named name (case-insensitive,
// one entry per header line; compact forms are not handled).
func kamHeaders(msg, name string) []string {
	var out []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
