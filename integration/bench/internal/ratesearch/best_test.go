package ratesearch

import "testing"

func TestBestCells(t *testing.T) {
	found := Best{Ran: true, Found: true, Rate: 8000, P50: 0.4, P99: 12, OK: 40000, CPU: 2}
	bounded := Best{Ran: true, Found: true, Bounded: true, Rate: 16000, P50: 2, P99: 24, OK: 80000, CPU: 4}
	none := Best{Ran: true, Note: "the first step failed"}
	for _, c := range []struct{ got, want string }{
		{Best{}.RateCell(), "not run"},
		{none.RateCell(), "none (the first step failed)"},
		{found.RateCell(), "8000/s"},
		{bounded.RateCell(), ">= 16000/s"},
		{RateRatio(found, bounded), "<= 0.50"},
		{RateRatio(bounded, found), ">= 2.00"},
		{RateRatio(bounded, bounded), "~1.00"},
		{RateRatio(found, found), "1.00"},
		{RateRatio(found, none), "-"},
		{found.LatCell(), "<1 ms / 12 ms"},
		{none.LatCell(), "-"},
		{LatRatio(bounded, found), "- / 2.00"},
		{LatRatio(Best{}, found), "-"},
		{found.CPUCell(), "50 µs"},
		{none.CPUCell(), "-"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
