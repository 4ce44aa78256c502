package ratesearch

import "testing"

// The search's path over a server whose limit is 5,000/s: doubling from
// 1,000, then bisecting between 4,000 and 8,000.
func TestBisectorPath(t *testing.T) {
	l := Limits{MaxRate: 64000, MinRate: 50, Bisect: 3}
	b := Bisector{Rate: 1000}
	var tried []int
	for range 20 {
		tried = append(tried, b.Rate)
		if done, _, _ := b.Next(l, b.Rate <= 5000); done {
			break
		}
	}
	want := []int{1000, 2000, 4000, 8000, 6000, 5000, 5500}
	if len(tried) != len(want) {
		t.Fatalf("tried %v, want %v", tried, want)
	}
	for i := range want {
		if tried[i] != want[i] {
			t.Fatalf("tried %v, want %v", tried, want)
		}
	}
}

func TestVerdict(t *testing.T) {
	ok := Outcome{Rate: 1000, Calls: 10000, Achieved: 990, Sent: 1000}
	if pass, _, why := Verdict(ok); !pass || why != "ok" {
		t.Errorf("clean step: pass %v (%s)", pass, why)
	}
	retrans := ok
	retrans.Retrans = 10 // 0.1 %
	if pass, _, _ := Verdict(retrans); pass {
		t.Error("0.1 % retransmissions passed")
	}
	slowSender := ok
	slowSender.Achieved, slowSender.Sent = 800, 800
	if pass, limited, _ := Verdict(slowSender); pass || !limited {
		t.Errorf("sipp-limited step: pass %v, sender limited %v", pass, limited)
	}
}
