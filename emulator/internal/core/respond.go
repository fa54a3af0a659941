// Package core holds what every service of the emulator shares: the one lock over the cloud's
// state, the data folder where bytes live, the caller's tenant, ids and times, and Rackspace's
// way of answering errors.
package core

import (
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

// Fail writes a Rackspace fault body: {"<fault>":{"code":N,"message":"..."}}.
func Fail(w http.ResponseWriter, code int, format string, args ...any) {
	body := map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}
	WriteJSON(w, code, map[string]any{FaultName(code): body})
}

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
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

// MaxJSONBody bounds every JSON request body; anything longer is a client mistake.
const MaxJSONBody = 1 << 20

// ReadJSON decodes a bounded JSON body into v, answering 400 or 413 itself when it cannot.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBody+1))
	if err != nil {
		Fail(w, 400, "could not read request body: %v", err)
		return false
	}
	if len(body) > MaxJSONBody {
		Fail(w, 413, "request body is larger than %d bytes", MaxJSONBody)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		Fail(w, 400, "malformed JSON in request body: %v", err)
		return false
	}
	return true
}

// FaultName is the name of the fault body Fail writes for code.
func FaultName(code int) string {
	if name := faultNames[code]; name != "" {
		return name
	}
	return "computeFault"
}
