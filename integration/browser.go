package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/testcerts"
)

// Browser SIP clients: headless Chromium (the system's, never a
// downloaded one) driven over the DevTools protocol by chromedp, each tab
// a phone running JsSIP (webrtc/phone.js) against a real node over
// WebSocket.

// webrtcDir holds the page, its script and the npm project that brings
// JsSIP (webrtc/package.json, pinned by package-lock.json).
const webrtcDir = "webrtc"

// jssipBundle is JsSIP built for the browser. The npm package ships
// CommonJS only, so npm ci's postinstall bundles it (esbuild, as JsSIP's
// own release build does) into webrtc/dist. A missing bundle fails the
// test, as a missing program does.
func jssipBundle(t testing.TB) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(webrtcDir, "dist", "jssip.js"))
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		t.Fatalf("JsSIP bundle: %v: run `npm ci` in integration/%s (CI installs it in .ci/run)", err, webrtcDir)
	}
	return path
}

// ServePhone serves the phone page (phone.html, phone.js, jssip.js) over
// HTTPS on loopback with the test server certificate and returns its
// URL. getUserMedia and RTCPeerConnection need a secure context; the
// browser is told to accept the test certificate (StartBrowser).
func ServePhone(t testing.TB, certs *testcerts.Certs) string {
	t.Helper()
	files := map[string]string{
		"/":         filepath.Join(webrtcDir, "phone.html"),
		"/phone.js": filepath.Join(webrtcDir, "phone.js"),
		"/jssip.js": jssipBundle(t),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, file)
	}))
	srv.TLS = certs.ServerTLS(t)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// Browser is one headless Chromium with a throw-away profile.
type Browser struct {
	t   testing.TB
	ctx context.Context // the browser's first tab; phones open more
}

// StartBrowser starts Chromium and stops it at the test's end, failing
// the test if any of its processes outlives the stop.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium: %v (CI installs it in .ci/run)", err)
	}
	profile := t.TempDir()
	var pgid int
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // the sandbox refuses to run as root, which CI is
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("crash-dumps-dir", profile),
		// Nothing but the test's own traffic: no first-run pages, updates,
		// sync, metrics or QUIC probes, and names do not resolve (every
		// URL the tests use is an IP address).
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		// Two phones run in two tabs of one browser: neither may be
		// slowed down as a background tab.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// Media without devices or permission prompts: getUserMedia gets
		// Chromium's fake audio, granted.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// The page and the nodes' WSS serve the throw-away test
		// certificate.
		chromedp.Flag("ignore-certificate-errors", true),
		// ICE between two tabs of this machine over 127.0.0.1 (the phones
		// offer only loopback candidates): Chromium gathers none on
		// loopback unless allowed. Host candidates of a page without
		// media permission would be mDNS names, resolved by multicast on
		// the LAN; the phones have permission, so that is only a guard.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints"),
		// Everything the browser writes stays in the profile, removed
		// with it: the audio client (PulseAudio) would otherwise leave
		// a /tmp/pulse-* directory per call.
		chromedp.Env("HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile,
			"XDG_RUNTIME_DIR="+profile, "TMPDIR="+profile),
		// Its own process group, so that the browser and every helper it
		// forks can be killed together, by the group's ID and nothing
		// broader; and killed with the test binary should that die first.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() {
		// A graceful close first (Browser.close), then the allocator's
		// kill, then the group and anything still holding the profile.
		closeCtx, closeCancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(closeCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing chromium: %v", err)
		}
		closeCancel()
		cancel()
		allocCancel()
		group := -1 // none known (the start failed): look by profile only
		if pgid > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			group = pgid
		}
		if left := survivors(group, profile, 5*time.Second); len(left) > 0 {
			t.Errorf("chromium processes %v outlived the browser's stop", left)
		}
	}
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		stop()
		t.Fatalf("start chromium: %v", err)
	}
	if p := chromedp.FromContext(ctx).Browser.Process(); p != nil {
		pgid = p.Pid
	}
	t.Cleanup(stop)
	t.Logf("chromium (pid %d) started in %v", pgid, time.Since(start).Round(time.Millisecond))
	return &Browser{t: t, ctx: ctx}
}

// Phone is one tab running the phone page: one JsSIP user agent.
type Phone struct {
	t      testing.TB
	Name   string
	ctx    context.Context
	cancel context.CancelFunc
	log    *syncBuffer // console output and uncaught errors of the page
	closed bool
}

// OpenPhone opens the phone page at url in a new tab. The tab closes at
// the test's end, when Close has not closed it before.
func (b *Browser) OpenPhone(t testing.TB, name, url string) *Phone {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Phone{t: t, Name: name, ctx: ctx, cancel: cancel, log: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- phone %s: page log:\n%s\n--- phone %s: SIP messages:\n%s", name, p.log.String(), name, p.wireOnFailure())
		}
		p.Close()
	})
	if err := chromedp.Listen(ctx, p.listen); err != nil {
		t.Fatalf("phone %s: %v", name, err)
	}
	navCtx, navCancel := context.WithTimeout(ctx, 20*time.Second)
	defer navCancel()
	err := chromedp.Do(navCtx, chromedp.Navigate(url))
	var version string
	if err == nil {
		version, err = chromedp.Run(navCtx, chromedp.Evaluate[string](`JsSIP.version + (typeof phone)`))
	}
	if err != nil {
		t.Fatalf("phone %s: loading %s: %v\n%s", name, url, err, p.log.String())
	}
	if !strings.HasSuffix(version, "object") {
		t.Fatalf("phone %s: the page has no phone API (%q)\n%s", name, version, p.log.String())
	}
	t.Logf("phone %s: JsSIP %s", name, strings.TrimSuffix(version, "object"))
	return p
}

// listen keeps the page's console and uncaught exceptions; it runs in
// chromedp's reading loop, so it only appends.
func (p *Phone) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		fmt.Fprintf(p.log, "console.%s: %s\n", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		fmt.Fprintf(p.log, "uncaught: %s\n", msg)
	}
}

// js calls phone.fn(args...) in the page, awaits the promise it may
// return and decodes the result into a T. A rejection (or a throw) comes
// back as an error carrying the page's message.
func js[T any](p *Phone, d time.Duration, fn string, args ...any) (T, error) {
	enc := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			var zero T
			return zero, err
		}
		enc[i] = string(b)
	}
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	expr := fmt.Sprintf("phone.%s(%s)", fn, strings.Join(enc, ", "))
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	var exc *chromedp.ExceptionError
	if errors.As(err, &exc) && exc.ExceptionDetails.Exception != nil {
		err = errors.New(exc.ExceptionDetails.Exception.Description)
	}
	return v, err
}

// jsWait is how long the Go side waits beyond a wait the page times
// itself, so that the page's own, more telling, timeout comes first.
const jsWait = 5 * time.Second

// Registration is what a phone's REGISTER got.
type Registration struct {
	// Response is the final answer as received (JsSIP took it as
	// registered); Raw is its text.
	Response *sip.Response
	Raw      string
	// Instance is JsSIP's instance ID (a UUID; the Contact carries it
	// as +sip.instance="<urn:uuid:...>"), Contact the Contact JsSIP
	// will now put in its requests.
	Instance string
	Contact  string
	// PubGRUU and TempGRUU are what JsSIP took from the 200's Contact
	// (RFC 5627): it then uses the public GRUU as its Contact.
	PubGRUU  string
	TempGRUU string
	// Request is the last REGISTER as JsSIP sent it.
	Request *sip.Request
}

// Register starts the phone's user agent as uri, over the WebSocket
// server at wsURL, and waits until JsSIP reports it registered.
// config goes into JsSIP's UA configuration (nil: JsSIP's defaults).
func (p *Phone) Register(wsURL, uri string, config map[string]any) Registration {
	p.t.Helper()
	if config == nil {
		config = map[string]any{}
	}
	type result struct {
		Response, Instance, Contact, PubGruu, TempGruu string
	}
	r, err := js[result](p, 10*time.Second+jsWait, "register", wsURL, uri, config, 10000)
	if err != nil {
		p.t.Fatalf("phone %s: register %s at %s: %v", p.Name, uri, wsURL, err)
	}
	reg := Registration{Raw: r.Response, Instance: r.Instance, Contact: r.Contact, PubGRUU: r.PubGruu, TempGRUU: r.TempGruu}
	msg, err := sip.ParseMessage([]byte(r.Response))
	res, ok := msg.(*sip.Response)
	if err != nil || !ok {
		p.t.Fatalf("phone %s: the answer JsSIP took as registered does not parse (%v):\n%s", p.Name, err, r.Response)
	}
	reg.Response = res
	for _, m := range p.Wire() {
		if req, ok := m.Message.(*sip.Request); ok && m.Sent && req.Method == sip.REGISTER {
			reg.Request = req
		}
	}
	if reg.Request == nil {
		p.t.Fatalf("phone %s: registered, but no REGISTER on the wire", p.Name)
	}
	return reg
}

// WireMessage is one SIP message the phone sent or received.
type WireMessage struct {
	Sent    bool
	Text    string
	Message sip.Message // nil when it does not parse (a keep-alive CRLF)
}

// Wire is the phone's SIP traffic so far.
func (p *Phone) Wire() []WireMessage {
	p.t.Helper()
	type msg struct{ Dir, Data string }
	raw, err := js[[]msg](p, 5*time.Second, "messages")
	if err != nil {
		p.t.Fatalf("phone %s: %v", p.Name, err)
	}
	out := make([]WireMessage, 0, len(raw))
	for _, m := range raw {
		w := WireMessage{Sent: m.Dir == "sent", Text: m.Data}
		if parsed, err := sip.ParseMessage([]byte(m.Data)); err == nil {
			w.Message = parsed
		}
		out = append(out, w)
	}
	return out
}

// wireOnFailure is the SIP traffic as text, for a failure report; the
// page may be gone.
func (p *Phone) wireOnFailure() string {
	if p.closed {
		return "(page closed)"
	}
	s, err := js[string](p, 5*time.Second, "wire")
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	return s
}

// Call calls target and returns the call's number.
func (p *Phone) Call(target string) int {
	p.t.Helper()
	n, err := js[int](p, 5*time.Second, "call", target)
	if err != nil {
		p.t.Fatalf("phone %s: call %s: %v", p.Name, target, err)
	}
	return n
}

// Incoming is a call that reached the phone.
type Incoming struct {
	Call   int
	Invite *sip.Request // as received
	Raw    string
}

// NextIncoming waits up to d for a call to reach the phone (JsSIP's
// newRTCSession for an INVITE; JsSIP has answered it 180).
func (p *Phone) NextIncoming(d time.Duration) Incoming {
	p.t.Helper()
	type result struct {
		Call   int
		Invite string
	}
	r, err := js[result](p, d+jsWait, "nextIncoming", d.Milliseconds())
	if err != nil {
		p.t.Fatalf("phone %s: %v", p.Name, err)
	}
	msg, err := sip.ParseMessage([]byte(r.Invite))
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		p.t.Fatalf("phone %s: incoming INVITE does not parse (%v):\n%s", p.Name, err, r.Invite)
	}
	return Incoming{Call: r.Call, Invite: req, Raw: r.Invite}
}

// Answer answers incoming call n (200 with the browser's SDP).
func (p *Phone) Answer(n int) { p.do("answer", n) }

// Reject answers incoming call n, still ringing, with code.
func (p *Phone) Reject(n, code int) { p.do("reject", n, code) }

// Hangup ends call n (BYE, or CANCEL while it rings).
func (p *Phone) Hangup(n int) { p.do("hangup", n) }

func (p *Phone) do(fn string, args ...any) {
	p.t.Helper()
	if _, err := js[chromedp.Void](p, 5*time.Second, fn, args...); err != nil {
		p.t.Fatalf("phone %s: %s%v: %v", p.Name, fn, args, err)
	}
}

// CallEvent is one of JsSIP's RTCSession events.
type CallEvent struct {
	Event      string // progress, accepted, confirmed, ended, failed
	Originator string // local, remote, system
	Cause      string // JsSIP's cause (ended, failed): "Terminated", "Busy", ...
	Code       int    // status code of the response behind it, if any
	Reason     string
}

func (e CallEvent) String() string {
	s := e.Event
	if e.Originator != "" {
		s += " (" + e.Originator + ")"
	}
	if e.Cause != "" {
		s += " cause " + e.Cause
	}
	if e.Code != 0 {
		s += fmt.Sprintf(" after %d %s", e.Code, e.Reason)
	}
	return s
}

// Await waits up to d for call n to reach event, and fails the test when
// the call ends otherwise (failed, ended) or not in time.
func (p *Phone) Await(n int, event string, d time.Duration) CallEvent {
	p.t.Helper()
	e, err := js[CallEvent](p, d+jsWait, "wait", n, event, d.Milliseconds())
	if err != nil {
		p.t.Fatalf("phone %s: %v", p.Name, err)
	}
	if e.Event != event {
		p.t.Fatalf("phone %s: call %d: %s, waiting for %s", p.Name, n, e, event)
	}
	return e
}

// Candidate is one end of the candidate pair ICE chose for a call.
type Candidate struct {
	Address  string // empty for a peer-reflexive remote candidate: Chromium hides it
	Port     int
	Type     string // host, prflx, ...
	Protocol string // udp, tcp
}

func (c Candidate) String() string {
	return fmt.Sprintf("%s %s/%s", net.JoinHostPort(c.Address, strconv.Itoa(c.Port)), c.Protocol, c.Type)
}

// Media waits up to d for call n's media to flow (the peer connection
// connected: ICE and DTLS done) and returns the candidate pair ICE chose.
// It fails the test when the local end is not an address of this
// machine: media must not leave it (the phones signal only 127.0.0.1,
// and a peer's local end is this phone's remote one).
func (p *Phone) Media(n int, d time.Duration) (local, remote Candidate) {
	p.t.Helper()
	type pair struct{ Local, Remote Candidate }
	r, err := js[pair](p, d+jsWait, "media", n, d.Milliseconds())
	if err != nil {
		p.t.Fatalf("phone %s: %v", p.Name, err)
	}
	if !localAddress(p.t, r.Local.Address) {
		p.t.Errorf("phone %s: call %d's media from %v, not an address of this machine", p.Name, n, r.Local)
	}
	return r.Local, r.Remote
}

// localAddress reports whether ip is loopback or one of this machine's
// interface addresses.
func localAddress(t testing.TB, ip string) bool {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr() == a.Unmap() {
			return true
		}
	}
	return false
}

// Close closes the tab, which closes its WebSocket (1001, going away)
// with no unREGISTER: the phone vanishes as a closed laptop lid does.
func (p *Phone) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.cancel()
}
