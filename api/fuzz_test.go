package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/locsvc/locsvc/locsvc"
)

// FuzzHTTPRegister feeds arbitrary bodies to POST /v1/register: the
// server never panics, answers 200 or a 4xx with a JSON error body, and a
// refused body changes nothing stored.
func FuzzHTTPRegister(f *testing.F) {
	for _, seed := range []string{
		`{"aor":"sip:alice@example.com","call_id":"c1","cseq":1,"expires":"3600","contacts":[{"uri":"sip:alice@192.0.2.1","q":0.5}]}`,
		`{"aor":"sip:alice@example.com","call_id":"c1","cseq":2,"wildcard":true,"expires":"0"}`,
		`{"aor":"sip:alice@example.com","callId":"c2","cseq":1,"contacts":[{"uri":"sip:a@[::1]:5060;transport=tcp","instance":"<urn:uuid:1>","regId":1}],"path":["sip:edge;lr"],"received":"192.0.2.1:5060"}`,
		`{"aor":`, `[]`, `{"cseq":-1}`, `{"contacts":[{"expires":"-5"}]}`,
	} {
		f.Add([]byte(seed))
	}
	mem := locsvc.NewMemStore(func() time.Time { return time.Unix(1_800_000_000, 0) }, time.Hour)
	f.Cleanup(func() { mem.Close() })
	svc, err := locsvc.NewService(mem, locsvc.DefaultLimits(), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	h := NewHTTP(NewServer(svc, Info{NodeID: "fuzz"}, nil), nil).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := mem.Len()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/register", bytes.NewReader(body)))
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if !bytes.Contains(rec.Body.Bytes(), []byte(`"error"`)) {
				t.Fatalf("%d without a JSON error body: %s", rec.Code, rec.Body)
			}
			if mem.Len() != before {
				t.Fatalf("a refused body (%d) changed the store", rec.Code)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
