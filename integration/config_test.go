package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `locsvc serve --config FILE` runs with what the file says (its node-id
// shows in /v1/status), flags override it, and a REGISTER flood from one
// address is refused with 503 and counted in /metrics under the limit it
// hit.
func TestServeConfigFileAndRegisterRateLimit(t *testing.T) {
	httpAddr, sipAddr := FreeAddr(t), FreeAddr(t)
	conf := filepath.Join(t.TempDir(), "locsvc.yaml")
	text := fmt.Sprintf(`node-id: from-config
grpc: %s
http: %s
sip: %s
gossip: %s
domain: [localhost]
replicas: 3
register-rate: 0.1
register-burst: 3
`, FreeAddr(t), httpAddr, sipAddr, FreeAddr(t))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// replicas: the command line wins over the file.
	p := Start(t, "locsvc from-config", LocsvcBinary(t), nil, "serve", "--config", conf, "--replicas", "1")
	if err := WaitHTTP(context.Background(), "http://"+httpAddr+"/readyz", 20*time.Second); err != nil {
		t.Fatalf("not ready: %v\n%s", err, p.Output())
	}
	status := httpGet(t, "http://"+httpAddr+"/v1/status")
	if !strings.Contains(status, "from-config") {
		t.Errorf("/v1/status does not name the config file's node-id:\n%s", status)
	}
	if !regexp.MustCompile(`"replicas":\s*1\b`).MatchString(status) {
		t.Errorf("/v1/status: want replicas 1 from the command line:\n%s", status)
	}

	// The flood: 10 REGISTERs at once from one socket; the burst of 3
	// passes, the rest get 503 with Retry-After. At 0.1/s no token comes
	// back while the flood is handled, however slow the machine.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, _ := net.ResolveUDPAddr("udp", sipAddr)
	const flood = 10
	for i := range flood {
		if _, err := conn.WriteToUDP([]byte(floodRegister(conn.LocalAddr().String(), i)), dst); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[int]int{}
	buf := make([]byte, 65535)
	for range flood {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("answers so far %v: %v", codes, err)
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		f := strings.Fields(line)
		code, _ := strconv.Atoi(f[1])
		codes[code]++
		if code == 503 && !strings.Contains(string(buf[:n]), "\r\nRetry-After: ") {
			t.Errorf("503 without Retry-After:\n%s", buf[:n])
		}
	}
	if codes[200] != 3 || codes[503] != flood-3 {
		t.Errorf("answers %v, want 3 200 and %d 503", codes, flood-3)
	}
	metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	want := fmt.Sprintf(`locsvc_sip_limited_total{limit="register_rate"} %d`, flood-3)
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "locsvc_sip_limited_total"))
	}
	if want := fmt.Sprintf(`locsvc_sip_shed_total{reason="register_rate"} %d`, flood-3); !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "locsvc_sip_shed_total"))
	}
	if !strings.Contains(metrics, `locsvc_sip_limited_total{limit="message_size"} 0`) {
		t.Errorf("/metrics does not show the limits not hit:\n%s", grepLines(metrics, "locsvc_sip_limited_total"))
	}
	// Every REGISTER got a final answer from the front end itself.
	if want := fmt.Sprintf(`locsvc_sip_answer_duration_seconds_count{method="REGISTER"} %d`, flood); !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "locsvc_sip_answer_duration"))
	}
}

// A bad config file stops serve before it starts anything: exit status
// 2, the file and the key named, the HTTP address never bound.
func TestServeBadConfigFile(t *testing.T) {
	httpAddr := FreeAddr(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown key", "http: %s\nnodeid: x\n", `:2: unknown key "nodeid"`},
		{"wrong type", "http: %s\ngrpc: {host: x}\n", ":2: grpc: got a mapping"},
		{"invalid value", "http: %s\nreplicas: two\n", `:2: replicas: invalid value "two"`},
		{"config in config", "http: %s\nconfig: x.yaml\n", `:2: "config" cannot be set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(tc.text, httpAddr)), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, LocsvcBinary(t), "serve", "--sip", "", "--config", conf).CombinedOutput()
			var ee *exec.ExitError
			if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), conf+tc.want) {
				t.Errorf("err=%v output=%q; want exit 2 and %q", err, out, conf+tc.want)
			}
			if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
				c.Close()
				t.Errorf("something listens on %s", httpAddr)
			}
		})
	}
	out, err := exec.Command(LocsvcBinary(t), "serve", "--config", filepath.Join(dir, "missing.yaml")).CombinedOutput()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "missing.yaml") {
		t.Errorf("missing file: err=%v output=%q", err, out)
	}
}

// floodRegister is the i-th REGISTER of a flood from local (host:port):
// each a new transaction for a user of its own.
func floodRegister(local string, i int) string {
	return fmt.Sprintf("REGISTER sip:localhost SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;rport;branch=z9hG4bK-flood-%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:flood%d@localhost>;tag=f%d\r\n"+
		"To: <sip:flood%d@localhost>\r\n"+
		"Call-ID: flood-%d@test\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:flood%d@%s>\r\n"+
		"Expires: 60\r\n"+
		"Content-Length: 0\r\n\r\n", local, i, i, i, i, i, i, local)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %v %s", url, err, resp.Status)
	}
	return string(body)
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
