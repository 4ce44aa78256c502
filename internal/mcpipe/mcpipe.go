// Package mcpipe is a memcached client that pipelines: each connection has
// one goroutine writing commands and one reading answers, in order, so
// many callers share a few connections and a busy connection carries many
// commands per write and many answers per read.
//
// It exists for the store's hot path. gomemcache gives every command a
// connection of its own for the command's whole round trip: a write, a
// read, a park and a wake-up per command. Measured on the reference
// machine that was about 34 µs of client CPU per command whatever the
// value size, and a REGISTER needs four. Under load the pipeline
// amortises the system calls over the commands waiting on a connection,
// and memcached's side gets the same saving. The text protocol answers
// in request order, which is all pipelining needs.
//
// Only the commands the store uses are here: gets (one key or many), add
// and cas.
//
// Connections are opened by Config.Dial, so that the caller decides how a
// shard is reached (plain TCP, or TLS with its certificates) once for every
// client it makes.
//
// Every call takes a context. Its deadline, when sooner than
// Config.Timeout, bounds the call instead, on the same pooled timer; its
// end stops the wait at once with an error wrapping ctx.Err(). A command
// whose caller stopped waiting before it was written is not sent; one
// already sent keeps its place in the pipeline and its answer is read
// and dropped, so the connection stays in step.
package mcpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Answers of the protocol, not failures of the server.
var (
	ErrCacheMiss   = errors.New("memcache: cache miss")
	ErrCASConflict = errors.New("memcache: compare-and-swap conflict")
	ErrNotStored   = errors.New("memcache: item not stored")
)

// Errors raised before anything is sent.
var (
	ErrMalformedKey = errors.New("memcache: key is empty, longer than 250 bytes or contains spaces or control characters")
	ErrBusy         = errors.New("memcache: too many commands queued for the server")
	ErrClosed       = errors.New("memcache: client closed")
)

// ErrNoAnswer is a server that closed a new connection before it answered
// anything. A memcached serving TLS only (-Z) does that to a client that
// does not speak TLS, and one requiring client certificates does it to a
// TLS client it refuses: the likeliest causes, so the message names them.
var ErrNoAnswer = errors.New("closed the connection without answering")

// NoAnswer wraps err, what reading or writing a new connection that never
// got an answer ran into, so that it matches ErrNoAnswer when it is the
// server closing the connection (end of file, reset, broken pipe); other
// errors are returned as they are. overTLS says whether the connection
// was TLS, which changes the likely cause.
func NoAnswer(err error, overTLS bool) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return noAnswerError{err, overTLS}
	}
	return err
}

type noAnswerError struct {
	err     error
	overTLS bool
}

func (e noAnswerError) Error() string {
	if e.overTLS {
		return "closed the TLS connection without answering (" + e.err.Error() +
			"), as a memcached requiring client certificates does to a client it refuses"
	}
	return ErrNoAnswer.Error() + " (" + e.err.Error() + "), as a TLS-only memcached (-Z) does to a plain client"
}
func (e noAnswerError) Unwrap() error        { return e.err }
func (e noAnswerError) Is(target error) bool { return target == ErrNoAnswer }

// ServerError is an error line from memcached (ERROR, CLIENT_ERROR or
// SERVER_ERROR and its message).
type ServerError struct{ Line string }

func (e *ServerError) Error() string { return "memcache: server answered " + e.Line }

// timeoutError is what a call that outlived its timeout returns; it is a
// net.Error so callers can tell a slow server from a dead one.
type timeoutError struct{ addr string }

func (e timeoutError) Error() string   { return "memcache: " + e.addr + ": timed out" }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// ctxError is what a call whose context ended first returns. It wraps the
// context's error so that callers can tell "the caller gave up" from "the
// server is slow" with errors.Is(err, context.DeadlineExceeded) or
// context.Canceled.
type ctxError struct {
	addr string
	err  error
}

func (e ctxError) Error() string { return "memcache: " + e.addr + ": " + e.err.Error() }
func (e ctxError) Unwrap() error { return e.err }

// errAbandoned finishes an op whose caller gave up before it was written:
// nobody reads it.
var errAbandoned = errors.New("memcache: abandoned before it was sent")

// Item is a stored value. CAS is the token gets returned; CompareAndSwap
// sends it back.
type Item struct {
	Key        string
	Value      []byte
	Flags      uint32
	Expiration int32 // seconds from now, or a Unix time past 30 days; 0 never
	CAS        uint64
}

// Config tunes a Client. Zero values take the defaults noted.
type Config struct {
	// Timeout bounds each call, queueing included (default 500 ms), or
	// the call's context deadline when that comes sooner. A connection
	// whose server stays silent for Timeout is closed.
	Timeout time.Duration
	// Conns is how many connections the client keeps (default 2).
	Conns int
	// Queue bounds the commands waiting on one connection (default 4096);
	// past it calls fail at once with ErrBusy.
	Queue int
	// Dial opens a connection (default: plain TCP). Its context carries
	// the call's deadline, capped by Timeout, so a TLS handshake that
	// hangs costs no more than a silent server.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client talks to one memcached server. It is safe for concurrent use.
type Client struct {
	addr  string
	cfg   Config
	slots []slot
	next  atomic.Uint32
	done  atomic.Bool
	stats counters
}

// Stats is a snapshot of a client's traffic. Commands per write is how
// much the pipeline saves: gomemcache makes one write per command.
type Stats struct {
	Commands uint64 // sent
	Writes   uint64 // socket writes that carried them
}

// counters are the live values behind Stats, kept private so that only
// the connections move them.
type counters struct {
	commands, writes atomic.Uint64
}

// Stats returns the counters as they are now.
func (c *Client) Stats() Stats {
	return Stats{Commands: c.stats.commands.Load(), Writes: c.stats.writes.Load()}
}

// slot holds one connection, redialled after it breaks.
type slot struct {
	mu sync.Mutex
	cn *conn
}

// New returns a client for the server at addr (host:port). Connections are
// opened on first use.
func New(addr string, cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 2
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	return &Client{addr: addr, cfg: cfg, slots: make([]slot, cfg.Conns)}
}

// Close closes every connection; calls in flight fail with ErrClosed.
func (c *Client) Close() error {
	c.done.Store(true)
	for i := range c.slots {
		s := &c.slots[i]
		s.mu.Lock()
		if s.cn != nil {
			s.cn.fail(ErrClosed)
		}
		s.mu.Unlock()
	}
	return nil
}

// Get reads key with gets, so the item carries its CAS token.
func (c *Client) Get(ctx context.Context, key string) (*Item, error) {
	if !legalKey(key) {
		return nil, ErrMalformedKey
	}
	o := getOp()
	o.kind, o.key = kindGet, key
	if err := c.do(ctx, o); err != nil {
		release(o) // o.item is not read: an abandoned op's reader may still set it
		return nil, err
	}
	it := o.item
	release(o)
	return it, nil
}

// GetMulti reads many keys in one command; missing keys are absent from
// the map.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	if len(keys) == 0 {
		return map[string]*Item{}, nil
	}
	for _, k := range keys {
		if !legalKey(k) {
			return nil, ErrMalformedKey
		}
	}
	o := getOp()
	items := make(map[string]*Item, len(keys))
	o.kind, o.keys, o.items = kindGetMulti, keys, items
	err := c.do(ctx, o)
	release(o)
	if err != nil {
		return nil, err
	}
	return items, nil
}

// Add stores it only if its key is not there (ErrNotStored otherwise).
func (c *Client) Add(ctx context.Context, it *Item) error { return c.store(ctx, kindAdd, it) }

// CompareAndSwap stores it only if the key still holds the version it.CAS
// names (ErrCASConflict if it changed, ErrCacheMiss if it is gone).
//
// A store whose context ends before the command was written to the socket
// is never sent; one that was sent may still take effect.
func (c *Client) CompareAndSwap(ctx context.Context, it *Item) error {
	return c.store(ctx, kindCAS, it)
}

func (c *Client) store(ctx context.Context, kind opKind, it *Item) error {
	if !legalKey(it.Key) {
		return ErrMalformedKey
	}
	o := getOp()
	o.kind, o.key, o.item = kind, it.Key, it
	err := c.do(ctx, o)
	release(o)
	return err
}

// release gives o back to the pool unless its call gave up waiting: a
// writer or reader may still finish that op later.
func release(o *op) {
	if !o.abandoned.Load() {
		putOp(o)
	}
}

// do queues o on the next connection and waits for its answer, until
// cfg.Timeout or ctx's deadline, whichever is sooner, or until ctx is
// cancelled. When it gives up it marks o abandoned, and o must not be
// reused; every other outcome means o is finished with.
func (c *Client) do(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return ctxError{c.addr, err}
	}
	// One pooled timer serves both bounds: ctx's deadline only shortens
	// it, so a context with a deadline costs no timer of its own.
	wait, ctxBound := c.cfg.Timeout, false
	if dl, ok := ctx.Deadline(); ok {
		if until := time.Until(dl); until < wait {
			if until <= 0 {
				return ctxError{c.addr, context.DeadlineExceeded}
			}
			wait, ctxBound = until, true
		}
	}
	o.timer.Reset(wait)
	defer o.timer.Stop()
	// Nil for a context that cannot be cancelled (Background).
	cancelled := ctx.Done()
	s := &c.slots[int(c.next.Add(1))%len(c.slots)]
	for attempt := 0; ; attempt++ {
		cn, err := c.conn(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return ctxError{c.addr, ctx.Err()}
			}
			return err
		}
		if err := cn.enqueue(o); err != nil {
			return err
		}
		expired := false
		if cancelled == nil { // two cases cost a select less than three
			select {
			case <-o.done:
			case <-o.timer.C:
				expired = true
			}
		} else {
			select {
			case <-o.done:
			case <-o.timer.C:
				expired = true
			case <-cancelled:
				o.abandoned.Store(true)
				return ctxError{c.addr, ctx.Err()}
			}
		}
		if expired {
			o.abandoned.Store(true)
			if ctxBound {
				return ctxError{c.addr, context.DeadlineExceeded}
			}
			return timeoutError{c.addr}
		}
		// A connection the server closed (a restart) is found out by the
		// first command sent on it. That command is sent again, once, on a
		// new connection: every command here can be repeated safely (a
		// repeated add or cas fails as a conflict, which the caller
		// retries with a fresh read).
		if o.err == nil {
			return nil
		}
		var ce *connError
		if attempt == 0 && errors.As(o.err, &ce) && !ce.timeout && cn.served.Load() {
			o.reset()
			continue
		}
		return o.err
	}
}

// conn returns the slot's connection, dialling when there is none or the
// last one broke.
func (c *Client) conn(ctx context.Context, s *slot) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the slot's lock: Close marks the client done before
	// it takes the slots' locks, so no connection is dialled after Close
	// has passed its slot.
	if c.done.Load() {
		return nil, ErrClosed
	}
	if s.cn != nil && !s.cn.isDead() {
		return s.cn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	nc, err := c.cfg.Dial(dctx, "tcp", c.addr)
	cancel()
	if err != nil {
		// A failed TLS handshake does not name the server: say which.
		var ne net.Error
		return nil, &connError{addr: c.addr, err: err, timeout: errors.As(err, &ne) && ne.Timeout()}
	}
	s.cn = newConn(nc, c.addr, c.cfg, &c.stats)
	return s.cn, nil
}

// legalKey is memcached's rule for keys in the text protocol.
func legalKey(key string) bool {
	if len(key) == 0 || len(key) > 250 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// connError is a broken connection: every command queued on it fails with
// it.
type connError struct {
	addr    string
	err     error
	timeout bool
}

func (e *connError) Error() string   { return fmt.Sprintf("memcache: %s: %v", e.addr, e.err) }
func (e *connError) Unwrap() error   { return e.err }
func (e *connError) Timeout() bool   { return e.timeout }
func (e *connError) Temporary() bool { return e.timeout }
