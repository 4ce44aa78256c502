package sipfront

import (
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive timestamps: the kernel notes when each datagram reached the
// socket (SO_TIMESTAMPNS), which is what makes a datagram's wait in the
// socket queue measurable, the signal of overload control.

// rxTimeOOB is room for the timestamp's control message.
var rxTimeOOB = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))

// enableRxTime asks the kernel to timestamp conn's datagrams.
func enableRxTime(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// rxTime finds the timestamp among a datagram's control messages; zero
// when there is none.
func rxTime(oob []byte) time.Time {
	hdr := int(unsafe.Sizeof(unix.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			return time.Time{}
		}
		oob = oob[next:]
	}
	return time.Time{}
}
