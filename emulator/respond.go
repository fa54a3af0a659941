package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// faultNames are the Rackspace fault body names per status code.
var faultNames = map[int]string{
	400: "badRequest",
	401: "unauthorized",
	403: "forbidden",
	404: "itemNotFound",
	405: "badMethod",
	409: "conflict",
	411: "lengthRequired",
	413: "overLimit",
	415: "badMediaType",
	416: "requestedRangeNotSatisfiable",
	422: "unprocessableEntity",
	500: "computeFault",
	503: "serviceUnavailable",
}

// fail writes a Rackspace fault body: {"<fault>":{"code":N,"message":"..."}}.
func fail(w http.ResponseWriter, code int, format string, args ...any) {
	name := faultNames[code]
	if name == "" {
		name = "computeFault"
	}
	writeJSON(w, code, map[string]any{name: map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// maxJSONBody bounds every JSON request body; anything longer is a client mistake.
const maxJSONBody = 1 << 20

// readJSON decodes a bounded JSON body into v, answering 400 or 413 itself when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		fail(w, 400, "could not read request body: %v", err)
		return false
	}
	if len(body) > maxJSONBody {
		fail(w, 413, "request body is larger than %d bytes", maxJSONBody)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, 400, "malformed JSON in request body: %v", err)
		return false
	}
	return true
}

// lockReply takes the emulator's lock for a handler that answers from shared state, and gives
// it a writer that holds the answer in memory. The returned unlock releases the lock first and
// writes the answer after, so a client that reads slowly (or a stalled link) never holds the
// lock that every region and account shares. Use as: w, unlock := e.lockReply(w); defer unlock().
func (e *Emulator) lockReply(w http.ResponseWriter) (http.ResponseWriter, func()) {
	held := &heldReply{header: http.Header{}}
	e.mu.Lock()
	return held, func() {
		e.mu.Unlock()
		held.sendTo(w)
	}
}

// heldReply is an answer built under the lock and sent after it.
type heldReply struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldReply) Header() http.Header { return h.header }

func (h *heldReply) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldReply) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

func (h *heldReply) sendTo(w http.ResponseWriter) {
	if h.status == 0 {
		return // the handler wrote nothing: net/http answers 200 as it would have
	}
	for k, v := range h.header {
		w.Header()[k] = v
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes())
}
