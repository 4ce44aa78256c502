package ratesearch

import (
	"path/filepath"
	"strconv"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
)

// Step is one sipp run of the search: calls of scenario at rate, from
// the users of usersCSV, to target; sipp's output goes to dir.
type Step struct {
	Scenario, UsersCSV, Dir, Target string
	Port, Rate, Calls               int
}

// Duration is how long the step's calls take at its rate, plus slack.
// sipp gives up on a call after -recv_timeout, and on the whole run well
// after the calls should have ended, so a saturated step ends.
func (s Step) Duration() time.Duration {
	return time.Duration(float64(s.Calls)/float64(s.Rate)*float64(time.Second)) + 8*time.Second
}

// SippArgs is the step's sipp command line: one UDP socket, the statistics
// sippout reads (stat.csv, the response times, errors.log) in Dir.
func (s Step) SippArgs() []string {
	return []string{
		"-sf", s.Scenario,
		"-inf", s.UsersCSV,
		"-key", "domain", "localhost",
		"-i", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-t", "u1",
		"-r", strconv.Itoa(s.Rate), "-rp", "1000", "-m", strconv.Itoa(s.Calls),
		"-l", strconv.Itoa(max(s.Rate*4, 100)),
		"-buff_size", "4194304",
		"-recv_timeout", "4000",
		"-timeout", strconv.Itoa(int(s.Duration()/time.Second)) + "s",
		"-nostdin",
		"-trace_stat", "-stf", filepath.Join(s.Dir, "stat.csv"), "-fd", "1",
		"-trace_rtt", "-rtt_freq", strconv.Itoa(sippout.RttFreq(s.Calls)),
		"-trace_err", "-error_file", filepath.Join(s.Dir, "errors.log"), "-max_log_size", "2000000",
		s.Target,
	}
}
