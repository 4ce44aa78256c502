package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
)

// The operators' calls over HTTP (see httpjson.go for the routes).
//
// GET /v1/dump answers 200 with Content-Type application/x-ndjson: one
// DumpResponse a line, as JSON, sent as the dump goes. A failure before
// the first line is an ordinary error answer (status and error document);
// one after it can no longer change the status, so it is the last line,
// the error document itself: {"error": {...}}. A dump that ends without
// such a line is complete.

// dumpFlushEvery and dumpFlushAfter bound how long dumped lines wait in
// the response buffer: a paced dump trickles, and a reader should see
// each AoR soon after it was read.
const (
	dumpFlushEvery = 64
	dumpFlushAfter = 200 * time.Millisecond
)

func (h *HTTP) dump(w http.ResponseWriter, r *http.Request) {
	rate, err := rateParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, done := h.srv.walkContext(r.Context())
	defer done()
	rc := http.NewResponseController(w)
	lines, unflushed := 0, 0
	var lastFlush time.Time // zero: the first line goes out at once
	var writeErr error
	err = h.srv.svc.Dump(ctx, h.srv.walkRate(rate), func(res locsvc.Result) error {
		b, err := marshal.Marshal(dumpEntry(res))
		if err != nil {
			return err
		}
		if lines == 0 {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
		lines++
		if _, writeErr = w.Write(append(b, '\n')); writeErr != nil {
			return writeErr
		}
		if unflushed++; unflushed >= dumpFlushEvery || time.Since(lastFlush) >= dumpFlushAfter {
			unflushed, lastFlush = 0, time.Now()
			writeErr = rc.Flush()
		}
		return writeErr
	})
	switch {
	case writeErr != nil:
		return // the client went away
	case err != nil && lines == 0:
		writeError(w, err)
		return
	case lines == 0:
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	case err != nil:
		_, body := errorOf(err)
		_ = json.NewEncoder(w).Encode(map[string]errBody{"error": body})
	}
}

func (h *HTTP) remove(w http.ResponseWriter, r *http.Request) {
	var in locsvcv1.RemoveRequest
	if !readJSON(w, r, &in) {
		return
	}
	out, err := h.srv.remove(r.Context(), &in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *HTTP) counts(w http.ResponseWriter, r *http.Request) {
	rate, err := rateParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := h.srv.counts(r.Context(), &locsvcv1.CountsRequest{Rate: rate})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// rateParam reads the optional ?rate= of a dump or count.
func rateParam(r *http.Request) (uint32, error) {
	v := r.URL.Query().Get("rate")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, &locsvc.Error{Kind: locsvc.KindInvalid, Field: "rate",
			Reason: "want records a second as a whole number (0: the node's rate), got " + strconv.Quote(v)}
	}
	return uint32(n), nil
}
