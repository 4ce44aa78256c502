package sippout

import (
	"os"
	"path/filepath"
	"testing"
)

// Two rows of a -trace_stat file as sipp 3.6 writes them (columns cut
// down): dates carry the epoch time as their last tab-separated field,
// durations are text.
func TestReadStatRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat.csv")
	data := "StartTime;CurrentTime;ElapsedTime(C);OutgoingCall(C);SuccessfulCall(C);FailedCall(C);Retransmissions(C);CallRate(C);\n" +
		"2026-12-07\t03:52:03.021237\t1796615523.021237;2026-12-07\t03:52:04.027863\t1796615524.027863;00:00:01:006000;10;4;0;0;9.9;\n" +
		"2026-12-07\t03:52:03.021237\t1796615523.021237;2026-12-07\t03:52:09.036069\t1796615529.036069;00:00:06:014000;10;9;1;3;1.6;\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadStatRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if got := rows[1]["CurrentTime"] - rows[1]["StartTime"]; got < 6.01 || got > 6.02 {
		t.Errorf("elapsed from the dates: %v s", got)
	}
	if _, ok := rows[0]["ElapsedTime(C)"]; ok {
		t.Error("a duration as text read as a number")
	}
	last, err := ReadStat(path)
	if err != nil {
		t.Fatal(err)
	}
	if last["SuccessfulCall(C)"] != 9 || last["FailedCall(C)"] != 1 || last["Retransmissions(C)"] != 3 {
		t.Errorf("last row %v", last)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := Percentile(v, 50); p != 5 {
		t.Errorf("p50 %v", p)
	}
	if p := Percentile(v, 99); p != 10 {
		t.Errorf("p99 %v", p)
	}
	if p := Percentile(nil, 50); p != 0 {
		t.Errorf("p50 of nothing %v", p)
	}
}

func TestParseUDPDrops(t *testing.T) {
	// Two sockets on port 5060 (0x13C4, SO_REUSEPORT), one on 40000
	// (0x9C40), one on a port not asked for.
	table := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 4815: 0100007F:13C4 00000000:0000 07 00000000:00273800 00:00000000 00000000     0        0 2760717 2 0000000041e7abb6 24870
 4816: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2760718 2 0000000041e7abb7 130
 4825: 0100007F:9C40 00000000:0000 07 00000000:007C6500 00:00000000 00000000     0        0 2760201 2 0000000082baaf92 11653
 4826: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2760202 2 0000000082baaf93 7
`
	got := parseUDPDrops(table, []int{5060, 40000, 41000})
	if got[5060] != 25000 || got[40000] != 11653 || got[41000] != 0 || len(got) != 2 {
		t.Errorf("drops %v", got)
	}
}
