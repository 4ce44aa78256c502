package statuspage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/api/statuspage"
	"github.com/locsvc/locsvc/locsvc"
)

// These tests draw the page through the HTTP API, as a browser gets it.

type fixedStatus func(out *locsvcv1.StatusResponse)

func (f fixedStatus) Status(_ context.Context, out *locsvcv1.StatusResponse) { f(out) }

func TestStatusPageEmbedded(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHTTP(api.NewServer(svc, api.Info{NodeID: "n1", StartedAt: time.Now()}, nil), nil).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/status: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	els, text := statuspage.ParseStrict(t, page)
	if !strings.Contains(text, "embedded store, single node") {
		t.Errorf("embedded page does not say so:\n%s", page)
	}
	shards := statuspage.ShardElements(els)
	if len(shards) != 1 || shards[0].Attrs["data-state"] != "healthy" {
		t.Errorf("embedded shard elements: %v", shards)
	}
	var full bool
	for _, e := range els {
		full = full || (e.Attrs["class"] == "arc" && strings.Count(e.Attrs["d"], "A ") == 2)
	}
	if !full {
		t.Errorf("the one shard should own the whole circle")
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/status" {
		t.Errorf("/: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = http.Get(srv.URL + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing-here: %s", resp.Status)
	}
}

func TestStatusPageRing(t *testing.T) {
	for _, c := range []struct {
		name   string
		shards []*locsvcv1.Shard
		paths  int
		text   string
	}{
		{"no shards yet", nil, 0, "no shards in the ring"},
		{"all down", []*locsvcv1.Shard{{Id: "a", NodeId: "n1"}, {Id: "b", NodeId: "n1"}}, 0, "0 healthy, 2 not"},
		{"one of three down", []*locsvcv1.Shard{
			{Id: "a", NodeId: "n1", Healthy: true, Ownership: 0.5},
			{Id: "b", NodeId: "n1", Healthy: false},
			{Id: "c", NodeId: "n1", Healthy: true, Ownership: 0.5},
		}, 2, "2 healthy, 1 not"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := fixedStatus(func(out *locsvcv1.StatusResponse) {
				out.Store = "memcached"
				out.Members = []*locsvcv1.Member{{NodeId: "n1", State: "active", Alive: true}}
				out.Shards = c.shards
			})
			srv := api.NewServer(nil, api.Info{NodeID: "n1", StartedAt: time.Now()}, src)
			st, err := srv.Status(context.Background(), &locsvcv1.StatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			page, err := statuspage.Render(st, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			els, text := statuspage.ParseStrict(t, page)
			if !strings.Contains(text, c.text) {
				t.Errorf("page lacks %q", c.text)
			}
			paths := 0
			for _, e := range els {
				if e.Name == "path" && e.Attrs["class"] == "arc" {
					paths++
				}
			}
			if paths != c.paths || len(statuspage.ShardElements(els)) != len(c.shards) {
				t.Errorf("%d arcs and %d shards drawn, want %d and %d", paths, len(statuspage.ShardElements(els)), c.paths, len(c.shards))
			}
		})
	}
}
