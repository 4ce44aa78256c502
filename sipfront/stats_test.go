package sipfront

import (
	"testing"
)

// Every final answer the front end sends is timed, by method; a
// retransmission answered from the table is not timed again.
func TestAnswerTimes(t *testing.T) {
	e := startEnv(t, nil)
	c := e.udpClient()
	wantCode(t, c.do(registerMsg("timed", 1)), 200)
	wantCode(t, c.do(msg{method: "OPTIONS", ruri: "sip:example.com"}), 200)
	st := e.srv.Stats()
	if h := st.AnswerTimes["REGISTER"]; h.Count != 1 || h.Sum <= 0 {
		t.Errorf("REGISTER answer times %+v", h)
	}
	if h := st.AnswerTimes["OPTIONS"]; h.Count != 1 {
		t.Errorf("OPTIONS answer times %+v", h)
	}
}
