package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
)

// register_retry.xml, the phone of the overload benchmark, against a
// registrar that refuses each registration's first two transactions with
// 503 and a Retry-After of 1 s, answers each refusal twice (as it would a
// retransmission), and sends a stray 503 of the previous transaction just
// before the 200 of the third: every phone must wait, retry with a new
// transaction, ignore the answers of its finished transactions, and
// register, after exactly three REGISTERs. The benchmark's smoke run does
// not overload anything, so this is where the retry path is kept working.
func TestRegisterRetryScenario(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatalf("sipp: %v (CI installs it in .ci/run)", err)
	}
	_, file, _, _ := runtime.Caller(0)
	scenario := filepath.Join(filepath.Dir(file), "..", "..", "sipp", "register_retry.xml")
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go refuseTwice(conn)

	const phones = 10
	dir := t.TempDir()
	var users strings.Builder
	users.WriteString("SEQUENTIAL\n")
	for i := range phones {
		fmt.Fprintf(&users, "phone%d;127.0.0.1:%d\n", i, 20000+i)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(users.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", scenario, "-inf", filepath.Join(dir, "users.csv"),
		"-key", "domain", "localhost", "-i", "127.0.0.1", "-p", "0", "-t", "u1",
		"-r", "20", "-m", strconv.Itoa(phones), "-recv_timeout", "32000",
		"-default_behaviors", "none", "-pause_msg_ign", "-nostdin",
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-trace_counts",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		conn.LocalAddr().String())
	cmd.Dir = dir
	output, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp: %v\n%s\n%s", err, output, errs)
	}
	stat, err := sippout.ReadStat(filepath.Join(dir, "stat.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, failed := stat["SuccessfulCall(C)"], stat["FailedCall(C)"]; ok != phones || failed != 0 {
		t.Errorf("%v phones registered, %v failed; want %d, 0", ok, failed, phones)
	}
	counts, _ := filepath.Glob(filepath.Join(dir, "*_counts.csv"))
	if len(counts) != 1 {
		t.Fatalf("%d -trace_counts files", len(counts))
	}
	row, err := sippout.ReadCounts(counts[0])
	if err != nil {
		t.Fatal(err)
	}
	var registers, refusals float64
	for k, v := range row {
		switch {
		case strings.HasSuffix(k, "_REGISTER_Sent"):
			registers += v
		case strings.HasSuffix(k, "_503_Recv"):
			refusals += v
		}
	}
	if registers != 3*phones || refusals != 2*phones {
		t.Errorf("%v REGISTERs sent and %v 503s taken; want %d and %d", registers, refusals, 3*phones, 2*phones)
	}
}

var (
	reBranch = regexp.MustCompile(`branch=([^;\r\n]+)`)
	reCallID = regexp.MustCompile(`(?m)^Call-ID: *(.+?)\r$`)
)

// refuseTwice is the registrar of TestRegisterRetryScenario: per Call-ID,
// the first two transactions (told apart by branch) get two 503s each
// with Retry-After: 1, the third a stray 503 of the second, then its 200.
func refuseTwice(conn net.PacketConn) {
	branches := map[string][]string{} // Call-ID -> its branches, in order
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := string(buf[:n])
		if !strings.HasPrefix(req, "REGISTER ") {
			continue
		}
		b, c := reBranch.FindStringSubmatch(req), reCallID.FindStringSubmatch(req)
		if b == nil || c == nil {
			continue
		}
		seen := branches[c[1]]
		i := 0
		for i < len(seen) && seen[i] != b[1] {
			i++
		}
		if i == len(seen) {
			branches[c[1]] = append(seen, b[1])
		}
		answer := func(status, branch, extra string) {
			var hdrs []string
			for _, line := range strings.Split(req, "\r\n") {
				name, _, _ := strings.Cut(line, ":")
				switch name {
				case "Via":
					line = strings.Replace(line, b[1], branch, 1)
					fallthrough
				case "From", "To", "Call-ID", "CSeq":
					hdrs = append(hdrs, line)
				}
			}
			msg := "SIP/2.0 " + status + "\r\n" + strings.Join(hdrs, "\r\n") + "\r\n" + extra + "Content-Length: 0\r\n\r\n"
			_, _ = conn.WriteTo([]byte(msg), from)
		}
		if i < 2 {
			answer("503 Service Unavailable", b[1], "Retry-After: 1\r\n")
			answer("503 Service Unavailable", b[1], "Retry-After: 1\r\n")
			continue
		}
		answer("503 Service Unavailable", branches[c[1]][1], "Retry-After: 1\r\n")
		answer("200 OK", b[1], "")
	}
}
