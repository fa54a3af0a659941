package emulator

import (
	"net/http"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// The admin API, on identity's host: faults, token lifetimes and expiry, and snapshots of seeded
// images. It passes no fault and checks no token: it is the test's hand, not a client's.

func (e *Emulator) routeAdmin(mux *http.ServeMux) {
	mux.HandleFunc("/_emulator/faults", e.adminFaults)
	mux.HandleFunc("POST /_emulator/tokens/expire", e.adminExpireTokens)
	mux.HandleFunc("PUT /_emulator/token-ttl", e.adminTokenTTL)
	mux.HandleFunc("DELETE /_emulator/token-ttl", e.adminTokenTTL)
	mux.HandleFunc("POST /_emulator/snapshots", e.adminSnapshot)
}

// adminFaults: GET lists the active faults, POST adds one (JSON body), PUT replaces all (JSON
// array), DELETE clears them.
func (e *Emulator) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		core.WriteJSON(w, 200, map[string]any{"faults": e.faults.List()})
	case http.MethodPost:
		var f Fault
		if !core.ReadJSON(w, r, &f) {
			return
		}
		if err := e.faults.Add(f); err != nil {
			core.Fail(w, 400, "%v", err)
			return
		}
		core.WriteJSON(w, 201, map[string]any{"faults": e.faults.List()})
	case http.MethodPut:
		var fs []Fault
		if !core.ReadJSON(w, r, &fs) {
			return
		}
		if err := e.faults.Replace(fs); err != nil {
			core.Fail(w, 400, "%v", err)
			return
		}
		core.WriteJSON(w, 200, map[string]any{"faults": e.faults.List()})
	case http.MethodDelete:
		e.faults.Clear()
		w.WriteHeader(204)
	default:
		core.Fail(w, 405, "use GET, POST, PUT or DELETE on /_emulator/faults")
	}
}

// AddFault injects a fault at run time.
func (e *Emulator) AddFault(f Fault) error { return e.faults.Add(f) }

// ReplaceFaults puts fs in place of every fault at once (nothing changes when one is invalid):
// a link that changes character mid-copy, with no moment between without a fault.
func (e *Emulator) ReplaceFaults(fs []Fault) error { return e.faults.Replace(fs) }

// Faults lists the injected faults not used up yet.
func (e *Emulator) Faults() []Fault { return e.faults.List() }

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() { e.faults.Clear() }

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (e *Emulator) SetTokenTTL(d time.Duration) { e.identity.SetTokenTTL(d) }

// ExpireTokens makes every issued token invalid at once, as if each reached its expiry.
func (e *Emulator) ExpireTokens() { e.identity.ExpireTokens() }

func (e *Emulator) adminExpireTokens(w http.ResponseWriter, r *http.Request) {
	e.ExpireTokens()
	w.WriteHeader(204)
}

// adminTokenTTL sets the lifetime of new tokens (PUT {"seconds":N}) or restores the one the
// emulator started with (DELETE), so a token-expiry experiment can be undone.
func (e *Emulator) adminTokenTTL(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		e.identity.ResetTokenTTL()
		w.WriteHeader(204)
		return
	}
	var body struct {
		Seconds float64 `json:"seconds"`
	}
	if !core.ReadJSON(w, r, &body) {
		return
	}
	if body.Seconds <= 0 {
		core.Fail(w, 400, "seconds must be above 0")
		return
	}
	e.SetTokenTTL(time.Duration(body.Seconds * float64(time.Second)))
	w.WriteHeader(204)
}

// Snapshot makes a new snapshot of a seeded image (see images.Service.Snapshot) and answers its id.
func (e *Emulator) Snapshot(req SnapshotRequest) (string, error) { return e.images.Snapshot(req) }

// adminSnapshot serves POST /_emulator/snapshots with a SnapshotRequest; it answers the new
// image's id.
func (e *Emulator) adminSnapshot(w http.ResponseWriter, r *http.Request) {
	var req SnapshotRequest
	if !core.ReadJSON(w, r, &req) {
		return
	}
	id, err := e.Snapshot(req)
	if err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	core.WriteJSON(w, 201, map[string]string{"id": id})
}
