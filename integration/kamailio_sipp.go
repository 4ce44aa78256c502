package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kamSipp is one sipp process running a scenario of
// integration/kamailio/sipp/, with its message and error traces in a
// temporary directory. The sipp runner of the bundled SIP front end lives
// elsewhere (sipp.go); this one serves the Kamailio tests only.
type kamSipp struct {
	*Proc
	Name     string
	Args     []string
	Dir      string
	Port     int // local SIP port
	msgFile  string
	errFile  string
	scenario string
}

// kamSippOptions describe one sipp run.
type kamSippOptions struct {
	Name     string            // label in logs
	Scenario string            // file name under integration/kamailio/sipp/
	Port     int               // local port; 0 picks a free one
	Service  string            // -s: the user part ([service])
	Remote   string            // proxy address; empty for a UAS
	Keys     map[string]string // -key name value
	Timeout  time.Duration     // -timeout (whole run); default 20s
	Extra    []string
}

// kamStartSipp starts sipp in the background (-m 1: one call, then exit).
func kamStartSipp(t testing.TB, o kamSippOptions) *kamSipp {
	t.Helper()
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(o.Scenario, ".xml")
	}
	dir := t.TempDir()
	s := &kamSipp{Name: o.Name, Dir: dir, Port: o.Port,
		msgFile:  filepath.Join(dir, o.Name+"_messages.log"),
		errFile:  filepath.Join(dir, o.Name+"_errors.log"),
		scenario: filepath.Join(kamDir(), "sipp", o.Scenario),
	}
	s.Args = []string{"-sf", s.scenario,
		"-i", "127.0.0.1", "-p", strconv.Itoa(o.Port), "-t", "u1",
		"-m", "1", "-nostdin",
		"-timeout", fmt.Sprintf("%ds", int(o.Timeout/time.Second)), "-timeout_error",
		"-recv_timeout", "10000",
		"-trace_msg", "-message_file", s.msgFile,
		"-trace_err", "-error_file", s.errFile,
	}
	if o.Service != "" {
		s.Args = append(s.Args, "-s", o.Service)
	}
	for k, v := range o.Keys {
		s.Args = append(s.Args, "-key", k, v)
	}
	s.Args = append(s.Args, o.Extra...)
	if o.Remote != "" {
		s.Args = append(s.Args, o.Remote)
	}
	s.Proc = Start(t, "sipp "+o.Name, "sipp", nil, s.Args...)
	return s
}

// kamRunSipp runs sipp to the end and fails the test, with every log, if it
// does not exit 0 (all calls successful) within its timeout.
func kamRunSipp(t testing.TB, o kamSippOptions) *kamSipp {
	t.Helper()
	s := kamStartSipp(t, o)
	s.WaitOK(t, o.Timeout+5*time.Second)
	return s
}

// WaitOK waits for sipp to exit and fails the test unless it exited 0.
func (s *kamSipp) WaitOK(t testing.TB, d time.Duration) {
	t.Helper()
	exited, err := s.Wait(d)
	if !exited {
		s.Kill()
		t.Fatalf("sipp %s still running after %v\n%s", s.Name, d, s.Logs())
	}
	if err != nil {
		t.Fatalf("sipp %s failed: %v\n%s", s.Name, err, s.Logs())
	}
}

// WaitListening waits until sipp has bound its UDP port (a UAS must before
// the call is placed): binding the same port then fails.
func (s *kamSipp) WaitListening(t testing.TB) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	WaitFor(t, 10*time.Second, "sipp "+s.Name+" listening on "+addr, func() bool {
		if s.Exited() {
			t.Fatalf("sipp %s exited before the call\n%s", s.Name, s.Logs())
		}
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

// Messages is the -trace_msg log: every message sent and received.
func (s *kamSipp) Messages() string {
	b, _ := os.ReadFile(s.msgFile)
	return string(b)
}

// Logs are the command line, sipp's output and its message and error traces.
func (s *kamSipp) Logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- sipp %s: sipp %s\n", s.Name, strings.Join(s.Args, " "))
	out := s.Output()
	if len(out) > 4000 {
		out = "..." + out[len(out)-4000:]
	}
	fmt.Fprintf(&b, "--- output:\n%s\n", out)
	for _, f := range []string{s.errFile, s.msgFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&b, "--- %s: %v\n", filepath.Base(f), err)
			continue
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}
