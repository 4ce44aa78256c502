package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/locsvc/locsvc/sipfront"
)

var (
	sipdemoOnce sync.Once
	sipdemoPath string
	sipdemoErr  error
)

// SipdemoBinary builds sipfront/internal/sipdemo (the SIP front end on an
// in-process store) once per test binary run.
func SipdemoBinary(t testing.TB) string {
	t.Helper()
	sipdemoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sipdemo-bin-")
		if err != nil {
			sipdemoErr = err
			return
		}
		sipdemoPath = filepath.Join(dir, "sipdemo")
		out, err := exec.Command("go", "build", "-race", "-o", sipdemoPath,
			"github.com/locsvc/locsvc/sipfront/internal/sipdemo").CombinedOutput()
		if err != nil {
			sipdemoErr = fmt.Errorf("go build sipdemo: %v\n%s", err, out)
		}
	})
	if sipdemoErr != nil {
		t.Fatal(sipdemoErr)
	}
	return sipdemoPath
}

// SipDemo is a running sipdemo process.
type SipDemo struct {
	*Proc
	SIP  string // host:port, UDP and TCP
	HTTP string
}

// StartSipDemo starts sipdemo on free loopback ports with extra flags
// (-mode, -domain, -credentials, -trusted...) and waits until it answers.
func StartSipDemo(t testing.TB, args ...string) *SipDemo {
	t.Helper()
	d := &SipDemo{SIP: FreeAddr(t), HTTP: FreeAddr(t)}
	args = append([]string{"-sip", d.SIP, "-http", d.HTTP}, args...)
	d.Proc = Start(t, "sipdemo", SipdemoBinary(t), nil, args...)
	if err := WaitHTTP(context.Background(), "http://"+d.HTTP+"/readyz", 20*time.Second); err != nil {
		t.Fatalf("sipdemo not ready: %v\n%s", err, d.Output())
	}
	return d
}

// DemoBinding is a binding as sipdemo's /bindings reports it.
type DemoBinding struct {
	URI       string   `json:"uri"`
	Expires   int64    `json:"expires"`
	Q         float64  `json:"q"`
	CallID    string   `json:"call_id"`
	CSeq      uint32   `json:"cseq"`
	Path      []string `json:"path"`
	Received  string   `json:"received"`
	Transport string   `json:"transport"`
	Instance  string   `json:"instance"`
	RegID     uint32   `json:"reg_id"`
	UserAgent string   `json:"user_agent"`
	Node      string   `json:"node"`
}

// Bindings returns the AoR's current bindings, through the Locator.
func (d *SipDemo) Bindings(t testing.TB, aor string) []DemoBinding {
	t.Helper()
	resp, err := http.Get("http://" + d.HTTP + "/bindings?aor=" + url.QueryEscape(aor))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bindings: %s", resp.Status)
	}
	var out []DemoBinding
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Stats returns sipdemo's front-end counters (sipfront.Stats).
func (d *SipDemo) Stats(t testing.TB) sipfront.Stats {
	t.Helper()
	resp, err := http.Get("http://" + d.HTTP + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sipfront.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
