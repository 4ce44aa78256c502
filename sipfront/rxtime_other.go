//go:build !linux

package sipfront

import (
	"net"
	"time"
)

// Without kernel receive timestamps a datagram's queueing delay is not
// measured: overload control sees none.

var rxTimeOOB = 0

func enableRxTime(*net.UDPConn) error { return nil }

func rxTime([]byte) time.Time { return time.Time{} }
