package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// Drain runs the node's drain only when the request names this node and
// comes as JSON; every refusal names what to fix and drains nothing.
func TestDrainRequests(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(svc, Info{NodeID: "n1", StartedAt: time.Now()}, nil)
	var drains atomic.Int64
	srv.SetDrain(func(context.Context) (*locsvcv1.DrainResponse, error) {
		drains.Add(1)
		return &locsvcv1.DrainResponse{NodeId: "n1", KeysScanned: 3, KeysCopied: 2, Complete: true}, nil
	})
	web := httptest.NewServer(NewHTTP(srv, nil).Handler())
	t.Cleanup(web.Close)

	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code, contains          string
		drained                 bool
	}{
		{"no node id", "application/json", `{}`, 400, "INVALID_ARGUMENT", "name the node to drain (this is n1)", false},
		{"another node", "application/json", `{"node_id":"n2"}`, 400, "INVALID_ARGUMENT", "this is node n1, not n2: nothing done", false},
		{"a form, as a web page could send", "application/x-www-form-urlencoded", `node_id=n1`, 415, "INVALID_ARGUMENT", "application/json", false},
		{"plain text", "text/plain", `{"node_id":"n1"}`, 415, "INVALID_ARGUMENT", "application/json", false},
		{"bad JSON", "application/json", `{"node_id":`, 400, "INVALID_ARGUMENT", "malformed JSON", false},
		{"this node", "application/json; charset=utf-8", `{"node_id":"n1"}`, 200, "", `"keys_copied":"2"`, true},
	} {
		before := drains.Load()
		req, _ := http.NewRequest("POST", web.URL+"/v1/drain", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(body.String(), c.contains) {
			t.Errorf("%s: %d %s; want %d containing %s", c.name, resp.StatusCode, body.String(), c.status, c.contains)
		}
		if c.code != "" {
			var doc errDoc
			if err := json.Unmarshal([]byte(body.String()), &doc); err != nil || doc.Error.Code != c.code {
				t.Errorf("%s: error body %s (%v), want code %s", c.name, body.String(), err, c.code)
			}
		}
		if got := drains.Load() - before; (got == 1) != c.drained || got > 1 {
			t.Errorf("%s: drained %d times", c.name, got)
		}
	}

	// gRPC: same checks; a node without a drain (the embedded store)
	// refuses with FAILED_PRECONDITION.
	if _, err := srv.Drain(context.Background(), &locsvcv1.DrainRequest{NodeId: "n2"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC, another node: %v", err)
	}
	embedded := NewServer(svc, Info{NodeID: "n1"}, nil)
	_, err = embedded.Drain(context.Background(), &locsvcv1.DrainRequest{NodeId: "n1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "embedded store") {
		t.Errorf("gRPC, embedded store: %v", err)
	}
}
