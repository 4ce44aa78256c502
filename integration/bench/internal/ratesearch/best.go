package ratesearch

import "fmt"

// Best is a finished search as a table shows it: whether it ran, and the
// highest sustainable step it found, if any. The commands keep their own
// step types; each says what its search found as a Best, and the cells
// below are the one way their tables print it.
type Best struct {
	Ran     bool   // the search ran at all
	Found   bool   // a sustainable rate was found
	Bounded bool   // the budget or the highest rate ended the search before the limit
	Note    string // why none was found, or why it was bounded
	// Of the highest sustainable step:
	Rate     int     // offered calls per second
	P50, P99 float64 // sipp's response times, ms
	OK       int     // answered calls
	CPU      float64 // CPU seconds of what was measured
}

// RateCell is the rate: ">=" when the search was bounded, "none (why)"
// without one, "not run" when the search did not run.
func (b Best) RateCell() string {
	switch {
	case !b.Ran:
		return "not run"
	case !b.Found:
		return "none (" + b.Note + ")"
	case b.Bounded:
		return fmt.Sprintf(">= %d/s", b.Rate)
	}
	return fmt.Sprintf("%d/s", b.Rate)
}

// RateRatio is a's sustainable rate over b's. A bounded search's true
// limit is higher than its rate, so the ratio is then a bound on one
// side ("~" when both were bounded).
func RateRatio(a, b Best) string {
	if !a.Found || !b.Found {
		return "-"
	}
	v := fmt.Sprintf("%.2f", float64(a.Rate)/float64(b.Rate))
	switch {
	case a.Bounded && b.Bounded:
		return "~" + v
	case a.Bounded:
		return ">= " + v
	case b.Bounded:
		return "<= " + v
	}
	return v
}

// LatCell is p50 / p99 at the rate found.
func (b Best) LatCell() string {
	if !b.Found {
		return "-"
	}
	return Ms(b.P50) + " / " + Ms(b.P99)
}

// LatRatio is a's p50 and p99 over b's. sipp counts whole milliseconds,
// so a ratio with a time under 1 ms would mean nothing.
func LatRatio(a, b Best) string {
	if !a.Found || !b.Found {
		return "-"
	}
	ratio := func(x, y float64) string {
		if x < 1 || y < 1 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x/y)
	}
	return ratio(a.P50, b.P50) + " / " + ratio(a.P99, b.P99)
}

// CPUCell is the CPU time per answered call at the rate found.
func (b Best) CPUCell() string {
	if !b.Found || b.OK == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", b.CPU/float64(b.OK)*1e6)
}

// Ms is a sipp time in whole milliseconds, "<1 ms" below one.
func Ms(v float64) string {
	if v < 1 {
		return "<1 ms"
	}
	return fmt.Sprintf("%.0f ms", v)
}
