package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/locsvc"
)

type failingStore struct{}

func (failingStore) Get(context.Context, string) (locsvc.BindingSet, error) {
	return locsvc.BindingSet{}, errors.New("no shard reachable")
}
func (failingStore) Update(context.Context, string, func(locsvc.BindingSet) (locsvc.BindingSet, error)) (locsvc.BindingSet, error) {
	return locsvc.BindingSet{}, errors.New("no shard reachable")
}

func newTestHTTP(t *testing.T, store locsvc.Store) *httptest.Server {
	t.Helper()
	svc, err := locsvc.NewService(store, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHTTP(NewServer(svc, Info{NodeID: "n1", StartedAt: time.Now()}, nil), nil)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type errDoc struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		SIPCode    int    `json:"sip_code"`
		MinExpires int    `json:"min_expires"`
		Field      string `json:"field"`
	} `json:"error"`
}

func call(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 405 && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, u, ct)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPRegisterAndLookup(t *testing.T) {
	mem := locsvc.NewMemStore(nil, time.Minute)
	defer mem.Close()
	srv := newTestHTTP(t, mem)
	const alice = `{"aor":"sip:alice@example.com","call_id":"c1","cseq":1,"expires":"3600",
	  "contacts":[{"uri":"sip:alice@192.0.2.1:5060","q":0.5},{"uri":"sip:alice@192.0.2.2:5060"}]}`
	before := func() string {
		_, b := call(t, "GET", srv.URL+"/v1/lookup?aor="+url.QueryEscape("sip:alice@example.com"), "")
		return b
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		sipCode                  int
		field                    string
		contains                 string
	}{
		{"register", "POST", "/v1/register", alice, 200, 0, "", `"uri":"sip:alice@192.0.2.2:5060"`},
		{"lookup by query", "GET", "/v1/lookup?aor=" + url.QueryEscape("sip:alice@EXAMPLE.com"), "", 200, 0, "", `"aor":"sip:alice@example.com"`},
		{"lookup by body, camelCase", "POST", "/v1/lookup", `{"aor":"sip:alice@example.com"}`, 200, 0, "", `"q":0.5`},
		{"lookup unknown AoR", "GET", "/v1/lookup?aor=" + url.QueryEscape("sip:nobody@example.com"), "", 200, 0, "", `"aor":"sip:nobody@example.com"`},
		{"lookup bad AoR", "GET", "/v1/lookup?aor=nonsense", "", 400, 400, "aor", ""},
		{"lookup no AoR", "GET", "/v1/lookup", "", 400, 400, "aor", ""},
		{"bad JSON", "POST", "/v1/register", `{"aor":`, 400, 400, "", "malformed JSON"},
		{"unknown field", "POST", "/v1/register", `{"aor":"sip:alice@example.com","bogus":1}`, 400, 400, "", "malformed JSON"},
		{"wrong type", "POST", "/v1/register", `{"aor":"sip:alice@example.com","cseq":"x"}`, 400, 400, "", "malformed JSON"},
		{"bad contact", "POST", "/v1/register", `{"aor":"sip:alice@example.com","call_id":"c2","cseq":1,"contacts":[{"uri":"mailto:x"}]}`, 400, 400, "contacts[0].uri", ""},
		{"too brief", "POST", "/v1/register", `{"aor":"sip:alice@example.com","call_id":"c2","cseq":1,"contacts":[{"uri":"sip:a@192.0.2.3","expires":"5"}]}`, 400, 423, "contacts[0].expires", ""},
		{"out of order", "POST", "/v1/register", `{"aor":"sip:alice@example.com","call_id":"c1","cseq":1,"contacts":[{"uri":"sip:alice@192.0.2.1:5060"}]}`, 409, 500, "cseq", ""},
		{"body too big", "POST", "/v1/register", `{"aor":"` + strings.Repeat("a", 70000) + `"}`, 413, 0, "", "64 KiB"},
		{"wrong method", "DELETE", "/v1/register", "", 405, 0, "", ""},
	}
	var stored string
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if i == 1 {
				stored = before()
			}
			status, body := call(t, tc.method, srv.URL+tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.contains != "" && !strings.Contains(body, tc.contains) {
				t.Errorf("body %s lacks %s", body, tc.contains)
			}
			if tc.sipCode != 0 {
				var doc errDoc
				if err := json.Unmarshal([]byte(body), &doc); err != nil {
					t.Fatalf("error body %q: %v", body, err)
				}
				if doc.Error.SIPCode != tc.sipCode || doc.Error.Field != tc.field || doc.Error.Message == "" || doc.Error.Code == "" {
					t.Errorf("error body %s: want sip_code %d field %q", body, tc.sipCode, tc.field)
				}
				if tc.sipCode == 423 && doc.Error.MinExpires != 60 {
					t.Errorf("min_expires = %d", doc.Error.MinExpires)
				}
			}
			if i > 1 && stored != "" {
				// Lookups answer "expires" in whole seconds; compare the
				// URIs and versions rather than the clock-dependent text.
				if got := before(); stripExpires(got) != stripExpires(stored) {
					t.Errorf("a refused call changed what is stored:\n%s\n%s", stored, got)
				}
			}
		})
	}
}

func stripExpires(s string) string {
	var doc map[string]any
	_ = json.Unmarshal([]byte(s), &doc)
	bs, _ := doc["bindings"].([]any)
	var out []string
	for _, b := range bs {
		m := b.(map[string]any)
		out = append(out, m["uri"].(string)+"@"+m["updated_at"].(string))
	}
	return strings.Join(out, ",")
}

func TestHTTPUnreachableRing(t *testing.T) {
	srv := newTestHTTP(t, failingStore{})
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/lookup?aor=" + url.QueryEscape("sip:a@example.com"), ""},
		{"POST", "/v1/register", `{"aor":"sip:a@example.com","call_id":"c","cseq":1,"contacts":[{"uri":"sip:a@192.0.2.1"}]}`},
	} {
		status, body := call(t, c.method, srv.URL+c.path, c.body)
		var doc errDoc
		_ = json.Unmarshal([]byte(body), &doc)
		if status != 503 || doc.Error.SIPCode != 503 || doc.Error.Code != "UNAVAILABLE" {
			t.Errorf("%s %s: %d %s, want 503 with sip_code 503", c.method, c.path, status, body)
		}
	}
}
