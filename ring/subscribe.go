package ring

import "sync"

// subscribers fans new snapshots out without ever blocking the builder: each
// channel holds one snapshot, and a newer one replaces an unread older one.
// A reader that falls behind misses intermediate snapshots, never the latest.
type subscribers struct {
	mu     sync.Mutex
	chans  map[chan *Ring]struct{}
	closed bool
}

func (s *subscribers) add(current *Ring) (<-chan *Ring, func()) {
	ch := make(chan *Ring, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	if s.chans == nil {
		s.chans = make(map[chan *Ring]struct{})
	}
	s.chans[ch] = struct{}{}
	if current != nil {
		ch <- current
	}
	return ch, func() { s.remove(ch) }
}

func (s *subscribers) remove(ch chan *Ring) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chans[ch]; ok {
		delete(s.chans, ch)
		close(ch)
	}
}

// publish runs only in the builder (one goroutine at a time), so draining and
// refilling a channel under s.mu cannot interleave with another publish.
func (s *subscribers) publish(r *Ring) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.chans {
		select {
		case <-ch: // drop the unread, older snapshot
		default:
		}
		ch <- r // cannot block: capacity 1, emptied above, only writer
	}
}

func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.chans {
		close(ch)
	}
	s.chans = nil
}
