package ringstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// listKeys enumerates the keys a memcached server holds, through the LRU
// crawler's metadump, and keeps those keep accepts. It is how repair finds
// records without a side index. It asks for a walk of the hash table
// ("metadump hash", memcached 1.6): a walk of the LRUs ("metadump all")
// misses items that reads move between the segmented LRUs during the walk,
// which under live traffic left some records out of a repair pass. Older
// servers that lack it get the LRU walk. A crawler busy with another
// request is retried. The connection is the store's (Config.Dial), TLS
// when the shards are.
func (s *Store) listKeys(ctx context.Context, addr string, keep func(string) bool) ([]string, error) {
	mode := "hash"
	for attempt := 0; ; attempt++ {
		keys, err := metadump(ctx, s.cfg.Dial, addr, s.cfg.Timeout*4, mode, keep)
		if errors.Is(err, errUnsupported) && mode == "hash" {
			mode = "all"
			continue
		}
		if !errors.Is(err, errCrawlerBusy) || attempt >= 50 {
			return keys, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var (
	errCrawlerBusy = errors.New("lru crawler busy")
	errUnsupported = errors.New("metadump mode not supported")
)

// metadump is one listing; timeout bounds the dial and handshake.
func metadump(ctx context.Context, dial DialFunc, addr string, timeout time.Duration, mode string, keep func(string) bool) ([]string, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("memcached %s: %w", addr, err)
	}
	defer conn.Close()
	// A dump of a large shard takes a while; bound it generously but
	// never leave it hanging.
	deadline := time.Now().Add(2 * time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("lru_crawler metadump " + mode + "\r\n")); err != nil {
		return nil, fmt.Errorf("memcached %s: %w", addr, unanswered(conn, err))
	}
	var keys []string
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	answered := false
	for sc.Scan() {
		answered = true
		line := sc.Text()
		switch {
		case line == "END":
			return keys, nil
		case strings.HasPrefix(line, "BUSY"):
			return nil, errCrawlerBusy
		case strings.HasPrefix(line, "CLIENT_ERROR"), line == "ERROR":
			return nil, fmt.Errorf("%w: %s", errUnsupported, line)
		case strings.HasPrefix(line, "SERVER_ERROR"):
			return nil, fmt.Errorf("metadump: %s", line)
		case strings.HasPrefix(line, "key="):
			field, _, _ := strings.Cut(line[len("key="):], " ")
			key, err := url.QueryUnescape(field)
			if err != nil {
				continue
			}
			if keep(key) {
				keys = append(keys, key)
			}
		}
	}
	err = sc.Err()
	switch {
	case !answered && err == nil:
		return nil, fmt.Errorf("memcached %s: %w", addr, unanswered(conn, io.EOF))
	case !answered:
		return nil, fmt.Errorf("memcached %s: %w", addr, unanswered(conn, err))
	case err != nil:
		return nil, err
	}
	return nil, errors.New("metadump: connection closed before END")
}
