package ring

// delegate is memberlist's Delegate. Everything this package gossips fits in
// node metadata, so only NodeMeta does work: no user messages, no push/pull
// state of our own.
type delegate struct{ m *Membership }

// NodeMeta runs under memberlist's locks, so it only loads the bytes that
// were encoded (and size-checked) when the metadata last changed.
func (d delegate) NodeMeta(limit int) []byte {
	b := d.m.encoded.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

func (delegate) NotifyMsg([]byte)                    {}
func (delegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (delegate) LocalState(bool) []byte              { return nil }
func (delegate) MergeRemoteState(buf []byte, _ bool) {}
