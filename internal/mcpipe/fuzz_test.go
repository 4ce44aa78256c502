package mcpipe

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzAnswers feeds arbitrary server bytes to one command of each kind:
// whatever memcached (or a corrupted stream) sends, the call ends with an
// answer or an error, never a panic or a hang, and an answer it accepts is
// one the command can have.
func FuzzAnswers(f *testing.F) {
	for _, seed := range []string{
		"END\r\n",
		"VALUE k 0 5 9\r\nhello\r\nEND\r\n",
		"VALUE k 3 0 1\r\n\r\nEND\r\n",
		"VALUE k 0 2 1\r\nab\r\nVALUE j 0 1 2\r\nc\r\nEND\r\n",
		"VALUE other 0 1 1\r\nx\r\nEND\r\n",
		"VALUE k 0 9999999999 1\r\n",
		"VALUE k 0 5 1\r\nhel",
		"STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n",
		"SERVER_ERROR out of memory storing object\r\n", "CLIENT_ERROR bad data chunk\r\n", "ERROR\r\n",
		"\r\n", "END", "STORED\nSTORED\r\n",
	} {
		for kind := range 4 {
			f.Add(uint8(kind), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, answer []byte) {
		client, server := net.Pipe()
		go func() {
			go io.Copy(io.Discard, server)
			_, _ = server.Write(answer)
			_ = server.Close()
		}()
		cn := newConn(client, "pipe", Config{Timeout: 200 * time.Millisecond, Queue: 4}, &counters{})
		defer cn.fail(ErrClosed)

		o := getOp()
		o.kind, o.key = opKind(kind%4), "k"
		switch o.kind {
		case kindGetMulti:
			o.keys, o.items = []string{"k", "j"}, map[string]*Item{}
		case kindAdd, kindCAS:
			o.item = &Item{Key: "k", Value: []byte("v"), CAS: 1}
		}
		if err := cn.enqueue(o); err != nil {
			t.Fatal(err)
		}
		select {
		case <-o.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("no answer to %d from %q", o.kind, answer)
		}
		if o.err != nil {
			return
		}
		switch o.kind {
		case kindGet:
			if o.item == nil || o.item.Key != "k" {
				t.Fatalf("get accepted %+v from %q", o.item, answer)
			}
			if !bytes.Contains(answer, o.item.Value) {
				t.Fatalf("get returned a value %q that was not sent", o.item.Value)
			}
		case kindAdd, kindCAS:
			if !bytes.HasPrefix(answer, []byte("STORED\r\n")) && !bytes.HasPrefix(answer, []byte("STORED\n")) {
				t.Fatalf("store accepted %q as success", answer)
			}
		}
	})
}
