package mcpipe

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type opKind uint8

const (
	kindGet opKind = iota
	kindGetMulti
	kindAdd
	kindCAS
)

// op is one command and, once done is signalled, its answer.
type op struct {
	kind  opKind
	key   string
	keys  []string
	item  *Item // add/cas: what to send; get: what came back
	items map[string]*Item
	err   error
	done  chan struct{}
	timer *time.Timer
	// abandoned is set by a caller that stopped waiting. The writer then
	// skips the op if it has not sent it yet, so a command its caller
	// reported as failed does not reach the server afterwards.
	abandoned atomic.Bool
}

// ops are pooled with their channel and timer: those two were most of the
// allocations a call made.
var opPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &op{done: make(chan struct{}, 1), timer: t}
}}

func getOp() *op { return opPool.Get().(*op) }

func putOp(o *op) {
	*o = op{done: o.done, timer: o.timer}
	opPool.Put(o)
}

// reset clears an answer before the op is sent again.
func (o *op) reset() {
	o.err = nil
	switch o.kind {
	case kindGet:
		o.item = nil
	case kindGetMulti:
		clear(o.items)
	}
}

func (o *op) finish(err error) {
	o.err = err
	o.done <- struct{}{}
}

// Before a write the writer yields to the scheduler up to maxYields times,
// so that callers just woken by answers can queue their next commands into
// it (without that, one command per write on a 2-core box; with it, 2.5 to
// 3). Batches are cut at maxBatch commands or batchBytes so that one busy
// connection does not hold a command back behind a long write.
const (
	maxYields  = 4
	maxBatch   = 128
	batchBytes = 32 << 10
)

// conn is one pipelined connection. The writer moves ops from reqs to the
// socket and then to pending; the reader answers pending in order.
type conn struct {
	addr    string
	nc      net.Conn
	timeout time.Duration
	bw      *bufio.Writer
	br      *bufio.Reader
	reqs    chan *op // queued, not yet written
	pending chan *op // written, awaiting their answers in this order
	served  atomic.Bool
	stats   *counters

	mu   sync.Mutex // orders enqueue against fail
	dead atomic.Bool
	err  error // why it broke; set before closing is closed

	once       sync.Once
	closing    chan struct{}
	writerDone chan struct{}

	rdl, wdl time.Time // deadlines last set; reader's and writer's own
	scratch  []byte    // writer's
}

func newConn(nc net.Conn, addr string, cfg Config, stats *counters) *conn {
	cn := &conn{
		addr: addr, nc: nc, timeout: cfg.Timeout, stats: stats,
		bw:         bufio.NewWriterSize(nc, batchBytes),
		br:         bufio.NewReaderSize(nc, 32<<10),
		reqs:       make(chan *op, cfg.Queue),
		pending:    make(chan *op, cfg.Queue),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		scratch:    make([]byte, 0, 128),
	}
	go cn.writeLoop()
	go cn.readLoop()
	return cn
}

func (cn *conn) isDead() bool { return cn.dead.Load() }

func (cn *conn) enqueue(o *op) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.dead.Load() {
		return cn.err
	}
	select {
	case cn.reqs <- o:
		return nil
	default:
		return ErrBusy
	}
}

// fail breaks the connection once; the reader then fails every op queued
// on it with err.
func (cn *conn) fail(err error) {
	cn.once.Do(func() {
		if !cn.served.Load() {
			_, overTLS := cn.nc.(*tls.Conn)
			err = NoAnswer(err, overTLS)
		}
		if !errors.Is(err, ErrClosed) {
			var ne net.Error
			err = &connError{addr: cn.addr, err: err, timeout: errors.As(err, &ne) && ne.Timeout()}
		}
		cn.mu.Lock()
		cn.err = err
		cn.dead.Store(true)
		cn.mu.Unlock()
		close(cn.closing)
		_ = cn.nc.Close()
	})
}

func (cn *conn) writeLoop() {
	defer close(cn.writerDone)
	for {
		var o *op
		select {
		case o = <-cn.reqs:
		case <-cn.closing:
			return
		}
		// Take whatever else is queued into the same write.
		yields := 0
		for n := 1; o != nil; n++ {
			if o.abandoned.Load() {
				o.finish(errAbandoned)
			} else {
				cn.stats.commands.Add(1)
				cn.encode(o)
				select {
				case cn.pending <- o:
				case <-cn.closing:
					o.finish(cn.err)
					return
				}
			}
			o = nil
			if n < maxBatch && cn.bw.Buffered() < batchBytes {
				select {
				case o = <-cn.reqs:
				default:
					if yields < maxYields {
						yields++
						runtime.Gosched()
						select {
						case o = <-cn.reqs:
						default:
						}
					}
				}
			}
		}
		if cn.bw.Buffered() == 0 {
			continue // every op of the batch was abandoned
		}
		if now := time.Now(); cn.wdl.Sub(now) < cn.timeout/2 {
			cn.wdl = now.Add(cn.timeout)
			_ = cn.nc.SetWriteDeadline(cn.wdl)
		}
		cn.stats.writes.Add(1)
		if err := cn.bw.Flush(); err != nil {
			cn.fail(err)
			return
		}
	}
}

func (cn *conn) encode(o *op) {
	w := cn.bw
	switch o.kind {
	case kindGet:
		w.WriteString("gets ")
		w.WriteString(o.key)
		w.WriteString("\r\n")
	case kindGetMulti:
		w.WriteString("gets")
		for _, k := range o.keys {
			w.WriteByte(' ')
			w.WriteString(k)
		}
		w.WriteString("\r\n")
	case kindAdd, kindCAS:
		it := o.item
		b := cn.scratch[:0]
		if o.kind == kindAdd {
			b = append(b, "add "...)
		} else {
			b = append(b, "cas "...)
		}
		b = append(b, it.Key...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(it.Flags), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(it.Expiration), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(it.Value)), 10)
		if o.kind == kindCAS {
			b = append(b, ' ')
			b = strconv.AppendUint(b, it.CAS, 10)
		}
		b = append(b, "\r\n"...)
		w.Write(b)
		w.Write(it.Value)
		w.WriteString("\r\n")
		cn.scratch = b
	}
}

func (cn *conn) readLoop() {
	for {
		var o *op
		select {
		case o = <-cn.pending:
		case <-cn.closing:
			cn.drain()
			return
		}
		// A server silent for a timeout while a command waits is taken
		// for dead. The deadline is moved only when half of it is used
		// up, which spares a timer update per answer.
		if now := time.Now(); cn.rdl.Sub(now) < cn.timeout/2 {
			cn.rdl = now.Add(cn.timeout)
			_ = cn.nc.SetReadDeadline(cn.rdl)
		}
		answer, err := cn.read(o)
		if err != nil {
			cn.fail(err)
			if answer != nil {
				o.finish(answer) // an error line the stream cannot recover from
			} else {
				o.finish(cn.err)
			}
			cn.drain()
			return
		}
		cn.served.Store(true)
		o.finish(answer)
	}
}

// drain fails what is left once the writer has stopped: nothing can be
// queued after fail, so nothing is left behind.
func (cn *conn) drain() {
	<-cn.writerDone
	for {
		select {
		case o := <-cn.pending:
			o.finish(cn.err)
		case o := <-cn.reqs:
			o.finish(cn.err)
		default:
			return
		}
	}
}

// read takes o's answer off the stream. answer is the protocol's verdict
// (nil, a miss, a conflict, an error line); err means the stream is no
// longer in step and the connection must go.
func (cn *conn) read(o *op) (answer, err error) {
	switch o.kind {
	case kindGet:
		for {
			it, end, answer, err := cn.readValue(o.key)
			if err != nil || answer != nil {
				return answer, err
			}
			if end {
				if o.item == nil {
					return ErrCacheMiss, nil
				}
				return nil, nil
			}
			if o.item != nil {
				return nil, errors.New("two values for one key: stream out of step")
			}
			o.item = it
		}
	case kindGetMulti:
		for {
			it, end, answer, err := cn.readValue("")
			if err != nil || answer != nil || end {
				return answer, err
			}
			o.items[it.Key] = it
		}
	default:
		line, err := cn.readLine()
		if err != nil {
			return nil, err
		}
		switch string(line) {
		case "STORED":
			return nil, nil
		case "NOT_STORED":
			return ErrNotStored, nil
		case "EXISTS":
			return ErrCASConflict, nil
		case "NOT_FOUND":
			return ErrCacheMiss, nil
		}
		return errorLine(line)
	}
}

// readValue reads one line of a gets answer: END, or a VALUE line and its
// data. A VALUE for a key other than want (when given) means the stream
// is out of step.
func (cn *conn) readValue(want string) (it *Item, end bool, answer, err error) {
	line, err := cn.readLine()
	if err != nil {
		return nil, false, nil, err
	}
	if string(line) == "END" {
		return nil, true, nil, nil
	}
	if !bytes.HasPrefix(line, []byte("VALUE ")) {
		answer, err = errorLine(line)
		return nil, false, answer, err
	}
	// VALUE <key> <flags> <bytes> <cas>
	var f [5][]byte
	n := 0
	for field := range bytes.FieldsSeq(line) {
		if n == len(f) {
			n++
			break
		}
		f[n] = field
		n++
	}
	if n != 5 {
		return nil, false, nil, errors.New("malformed VALUE line: " + strconv.Quote(string(line)))
	}
	flags, ok1 := parseUint(f[2], 32)
	size, ok2 := parseUint(f[3], 31)
	cas, ok3 := parseUint(f[4], 64)
	if !ok1 || !ok2 || !ok3 {
		return nil, false, nil, errors.New("malformed VALUE line: " + strconv.Quote(string(line)))
	}
	it = &Item{Key: want, Flags: uint32(flags), CAS: cas}
	if want == "" {
		it.Key = string(f[1])
	} else if string(f[1]) != want {
		return nil, false, nil, errors.New("answer for another key: stream out of step")
	}
	buf, err := readN(cn.br, int(size)+2)
	if err != nil {
		return nil, false, nil, err
	}
	if !bytes.HasSuffix(buf, []byte("\r\n")) {
		return nil, false, nil, errors.New("value not followed by CRLF")
	}
	it.Value = buf[:size:size]
	return it, false, nil, nil
}

// readN reads exactly n bytes. Up to a size no record reaches it
// allocates them at once; beyond, it grows with what arrives, so a
// corrupt length does not cost gigabytes before the stream ends.
func readN(r io.Reader, n int) ([]byte, error) {
	const direct = 1 << 20
	if n <= direct {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	var b bytes.Buffer
	got, err := b.ReadFrom(io.LimitReader(r, int64(n)))
	if err == nil && got < int64(n) {
		err = io.ErrUnexpectedEOF
	}
	return b.Bytes(), err
}

// readLine returns the next line without its CRLF; the slice is only good
// until the next read.
func (cn *conn) readLine() ([]byte, error) {
	line, err := cn.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
}

// errorLine sorts memcached's error lines. SERVER_ERROR fails only the
// command it answers (out of memory, value too large); ERROR and
// CLIENT_ERROR mean the server did not understand the stream, and
// anything else means we do not, so the connection goes too.
func errorLine(line []byte) (answer, err error) {
	se := &ServerError{Line: string(line)}
	if bytes.HasPrefix(line, []byte("SERVER_ERROR")) {
		return se, nil
	}
	return se, se
}

func parseUint(b []byte, bits uint) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if bits < 64 && v >= 1<<bits {
		return 0, false
	}
	return v, true
}
