package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// uaHost is the made-up host of every client's Via and Contact, as a
// browser UA writes it (RFC 7118's examples); answers go back on the
// connection, never to it.
const uaHost = "df7jal23ls0d.invalid"

// writeTimeout bounds one write of the generator, so that a server that
// stops reading cannot stall the keepalive loop or the refresh sender.
const writeTimeout = 5 * time.Second

var (
	ping    = []byte("\r\n\r\n") // RFC 5626 §3.5.1 keepalive ping; the pong is one CRLF
	errBusy = errors.New("a REGISTER is still waiting for its answer")
)

type kind uint8

const (
	kindWS kind = iota
	kindTCP
)

func (k kind) String() string { return [...]string{"WS", "TCP"}[k] }

// client is one UA on one connection. Its only goroutine is its reader;
// REGISTERs and keepalives are written by the one sender of the moment
// (a dialing worker, the refresh sender, the keepalive loop), so that
// 20,000 clients cost the generator 20,000 parked goroutines and no
// timers.
type client struct {
	b    *bench
	id   int
	kind kind
	nc   net.Conn        // TCP
	wc   *websocket.Conn // WebSocket
	// cseq is the CSeq of the last REGISTER sent: written only by the
	// sender of the moment, which hands over through channels or
	// WaitGroups, never concurrently.
	cseq uint32
	// pend is the REGISTER waiting for its final answer; nil when none.
	// A client never has two: the server hands the requests of one
	// connection to concurrent handlers, so a second refresh could
	// overtake the first and fail the registrar's CSeq order.
	pend atomic.Pointer[pending]
}

type pending struct {
	cseq uint32
	sent time.Time
	to   answerSink
}

// answerSink takes the final answer to a REGISTER and its response time.
type answerSink interface {
	answered(r response, lat time.Duration)
}

// waitAnswer is the sink of the first REGISTER of a client, whose dialing
// worker waits for it.
type waitAnswer chan response

func (w waitAnswer) answered(r response, _ time.Duration) { w <- r }

// response is what the generator reads of an answer.
type response struct {
	code            int
	cseq            uint32
	requireOutbound bool
	contentLength   int
}

// source is the loopback address client id connects from: -per-source
// clients share one, so that no address runs short of ephemeral ports.
func (b *bench) source(id int) net.IP {
	return net.IPv4(127, 0, 0, byte(2+id/b.c.perSource))
}

// open connects client id, registers it and enters it into the
// keepalive cycle.
func (b *bench) open(ctx context.Context, k kind, id int) error {
	c := &client{b: b, id: id, kind: k}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	if k == kindWS {
		c.wc, err = b.dialWS(ctx, id)
	} else {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: b.source(id)}}
		c.nc, err = d.DialContext(ctx, "tcp", b.srv.sip)
	}
	if err != nil {
		return fmt.Errorf("%s client %d: %w", k, id, err)
	}
	b.clients[id] = c
	b.readers.Add(1)
	go c.read()
	w := make(waitAnswer, 1)
	if err := c.register(w); err != nil {
		return fmt.Errorf("%s client %d: REGISTER: %w", k, id, err)
	}
	select {
	case r := <-w:
		switch {
		case r.code != 200:
			return fmt.Errorf("%s client %d: REGISTER answered %d", k, id, r.code)
		case !r.requireOutbound:
			return fmt.Errorf("%s client %d: the 200 to an outbound REGISTER carries no Require: outbound (RFC 5626 §6)", k, id)
		}
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s client %d: no answer to its REGISTER within 10 s", k, id)
		}
		return ctx.Err()
	}
	b.slots[b.slotOf[id]].Store(c)
	return nil
}

func (b *bench) dialWS(ctx context.Context, id int) (*websocket.Conn, error) {
	src := b.source(id)
	b.mu.Lock()
	hc := b.httpClients[src.String()]
	if hc == nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
		// No Proxy: the upgrade goes straight to the loopback server.
		hc = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		b.httpClients[src.String()] = hc
	}
	b.mu.Unlock()
	wc, _, err := websocket.Dial(ctx, "ws://"+b.srv.ws+"/", &websocket.DialOptions{
		HTTPClient:      hc,
		Subprotocols:    []string{"sip"},
		CompressionMode: websocket.CompressionDisabled,
		// The server's own liveness Pings cost it CPU at idle too: count
		// them (the library answers each with a Pong).
		OnPingReceived: func(context.Context, []byte) bool {
			b.wsPings.Add(1)
			return true
		},
	})
	if err != nil {
		return nil, err
	}
	if wc.Subprotocol() != "sip" {
		wc.CloseNow()
		return nil, fmt.Errorf("upgrade chose subprotocol %q, want sip", wc.Subprotocol())
	}
	return wc, nil
}

// registerMsg is the client's REGISTER: an RFC 5626 outbound UA with one
// flow (+sip.instance, reg-id=1), the same Call-ID every time.
func (c *client) registerMsg(cseq uint32) []byte {
	via, tr := "WS", "ws"
	if c.kind == kindTCP {
		via, tr = "TCP", "tcp"
	}
	return fmt.Appendf(make([]byte, 0, 640), "REGISTER sip:localhost SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-cb%s-%d-%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:u%d@localhost>;tag=cb%d\r\n"+
		"To: <sip:u%d@localhost>\r\n"+
		"Call-ID: cb%s-%d@%s\r\n"+
		"CSeq: %d REGISTER\r\n"+
		"Supported: outbound, path\r\n"+
		"Contact: <sip:u%d@%s;transport=%s>;+sip.instance=\"<urn:uuid:%s-%012x>\";reg-id=1\r\n"+
		"Expires: %d\r\n"+
		"User-Agent: connbench\r\n"+
		"Content-Length: 0\r\n\r\n",
		via, uaHost, c.b.runID, c.id, cseq,
		c.id, c.id,
		c.id,
		c.b.runID, c.id, uaHost,
		cseq,
		c.id, uaHost, tr, c.b.uuidPrefix, c.id,
		c.b.c.expires)
}

// register sends the next REGISTER (CSeq + 1) unless one is still
// waiting for its answer.
func (c *client) register(to answerSink) error {
	p := &pending{cseq: c.cseq + 1, sent: time.Now(), to: to}
	if !c.pend.CompareAndSwap(nil, p) {
		return errBusy
	}
	c.cseq++
	if err := c.write(c.registerMsg(p.cseq)); err != nil {
		c.pend.CompareAndSwap(p, nil)
		return err
	}
	return nil
}

func (c *client) keepalive() error { return c.write(ping) }

func (c *client) write(b []byte) error {
	if c.wc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		return c.wc.Write(ctx, websocket.MessageText, b)
	}
	// One Write is one whole message: the net package holds the socket's
	// write lock for all of it, so the keepalive loop and the refresh
	// sender cannot interleave bytes.
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *client) close() {
	if c.wc != nil {
		c.wc.CloseNow()
	} else {
		c.nc.Close()
	}
}

// read takes the answers off the connection until it ends. Over
// WebSocket it also answers the server's Pings (the library does while a
// Read is in progress), without which the server would close the
// connection.
func (c *client) read() {
	defer c.b.readers.Done()
	var err error
	if c.wc != nil {
		err = c.readWS()
	} else {
		err = c.readTCP()
	}
	if !c.b.closing.Load() {
		c.b.lost.Add(1)
		c.b.noteErr(fmt.Errorf("%s client %d: connection lost: %v", c.kind, c.id, err))
	}
}

func (c *client) readWS() error {
	for {
		_, data, err := c.wc.Read(context.Background())
		if err != nil {
			return err
		}
		if string(data) == "\r\n" {
			c.b.pongs.Add(1)
			continue
		}
		r, err := parseResponse(data)
		if err != nil {
			return err
		}
		c.answer(r)
	}
}

// readTCP splits the stream into answers: a lone CRLF between messages
// is a keepalive pong, anything else a response head and its body.
func (c *client) readTCP() error {
	br := bufio.NewReaderSize(c.nc, 2048)
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if string(line) == "\r\n" {
			c.b.pongs.Add(1)
			continue
		}
		head = append(head[:0], line...)
		for string(line) != "\r\n" {
			if line, err = br.ReadSlice('\n'); err != nil {
				return err
			}
			head = append(head, line...)
		}
		r, err := parseResponse(head)
		if err != nil {
			return err
		}
		if _, err := br.Discard(r.contentLength); err != nil {
			return err
		}
		c.answer(r)
	}
}

// answer hands a final answer to whoever waits for the REGISTER it
// answers. A late answer, to a REGISTER the ladder gave up on, is counted
// as stray.
func (c *client) answer(r response) {
	if r.code < 200 {
		return
	}
	p := c.pend.Load()
	if p == nil || p.cseq != r.cseq || !c.pend.CompareAndSwap(p, nil) {
		c.b.stray.Add(1)
		return
	}
	p.to.answered(r, time.Since(p.sent))
}

// parseResponse reads the status code and the few headers the generator
// checks from a response head (the body, if any, is not looked at).
func parseResponse(msg []byte) (response, error) {
	var r response
	line, rest, _ := bytes.Cut(msg, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		return r, fmt.Errorf("not a SIP response: %q", line)
	}
	code, err := strconv.Atoi(string(line[8:11]))
	if err != nil {
		return r, fmt.Errorf("status line %q", line)
	}
	r.code = code
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "cseq":
			n, _, _ := bytes.Cut(value, []byte(" "))
			v, err := strconv.ParseUint(string(n), 10, 32)
			if err != nil {
				return r, fmt.Errorf("CSeq %q", value)
			}
			r.cseq = uint32(v)
		case "content-length", "l":
			if r.contentLength, err = strconv.Atoi(string(value)); err != nil {
				return r, fmt.Errorf("Content-Length %q", value)
			}
		case "require":
			for tag := range bytes.SplitSeq(value, []byte(",")) {
				if bytes.EqualFold(bytes.TrimSpace(tag), []byte("outbound")) {
					r.requireOutbound = true
				}
			}
		}
	}
	return r, nil
}

// connect opens n clients of kind k, ids first to first+n-1, at most
// -dial-concurrency at a time (so the listen backlog never fills), and
// reports how long it took.
func (b *bench) connect(ctx context.Context, k kind, first, n int) (time.Duration, error) {
	t0 := time.Now()
	ids := make(chan int)
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		errMu  sync.Mutex
		errs   []error
	)
	for range min(b.c.dialConc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := b.open(ctx, k, id); err != nil {
					failed.Store(true)
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
			}
		}()
	}
	for id := first; id < first+n && !failed.Load() && ctx.Err() == nil; id++ {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("%d of the %s clients failed; the first: %w", len(errs), k, errs[0])
	}
	return time.Since(t0), nil
}

// keepaliveLoop sends every connected client its keepalive once per
// -keepalive. Each client has a slot in the cycle, drawn at random and
// evenly spaced, so that the server sees a steady rate rather than
// bursts; a slot whose client is not connected yet is skipped. One
// goroutine does all the writes, woken every 10 ms.
func (b *bench) keepaliveLoop(ctx context.Context) {
	defer b.kaDone.Done()
	total := len(b.slots)
	if b.c.keepalive <= 0 || total == 0 {
		return
	}
	t0 := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next := int64(0) // the next slot due, counted from the start
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(float64(time.Since(t0)) / float64(b.c.keepalive) * float64(total))
		for ; next <= due; next++ {
			c := b.slots[next%int64(total)].Load()
			if c == nil {
				continue
			}
			if err := c.keepalive(); err != nil {
				b.kaErrs.Add(1)
				if !b.closing.Load() {
					b.noteErr(fmt.Errorf("%s client %d: keepalive: %v", c.kind, c.id, err))
				}
				continue
			}
			b.kaSent.Add(1)
		}
	}
}
