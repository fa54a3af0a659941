package emulator

import (
	"net/http"
	"time"
)

// adminFaults: GET lists the active faults, POST adds one (JSON body), PUT replaces all (JSON
// array), DELETE clears them.
func (e *Emulator) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, map[string]any{"faults": e.faults.list()})
	case http.MethodPost:
		var f Fault
		if !readJSON(w, r, &f) {
			return
		}
		if err := e.faults.add(f); err != nil {
			fail(w, 400, "%v", err)
			return
		}
		writeJSON(w, 201, map[string]any{"faults": e.faults.list()})
	case http.MethodPut:
		var fs []Fault
		if !readJSON(w, r, &fs) {
			return
		}
		next, err := newFaultSet(fs, e.regionNames())
		if err != nil {
			fail(w, 400, "%v", err)
			return
		}
		e.faults.mu.Lock()
		e.faults.faults = next.faults
		e.faults.mu.Unlock()
		writeJSON(w, 200, map[string]any{"faults": e.faults.list()})
	case http.MethodDelete:
		e.faults.clear()
		w.WriteHeader(204)
	default:
		fail(w, 405, "use GET, POST, PUT or DELETE on /_emulator/faults")
	}
}

// AddFault injects a fault at run time.
func (e *Emulator) AddFault(f Fault) error { return e.faults.add(f) }

// Faults lists the injected faults not used up yet.
func (e *Emulator) Faults() []Fault { return e.faults.list() }

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() { e.faults.clear() }

func (e *Emulator) tokenTTL() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.TokenTTL
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (e *Emulator) SetTokenTTL(d time.Duration) {
	e.mu.Lock()
	e.cfg.TokenTTL = d
	e.mu.Unlock()
}

// ExpireTokens makes every issued token invalid at once, as if each reached its expiry.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	e.st.Tokens = map[string]*token{}
	e.commit()
	e.mu.Unlock()
}

func (e *Emulator) adminExpireTokens(w http.ResponseWriter, r *http.Request) {
	e.ExpireTokens()
	w.WriteHeader(204)
}

// adminTokenTTL sets the lifetime of new tokens (PUT {"seconds":N}) or restores the one the
// emulator started with (DELETE), so a token-expiry experiment can be undone.
func (e *Emulator) adminTokenTTL(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		e.SetTokenTTL(e.startTTL)
		w.WriteHeader(204)
		return
	}
	var body struct {
		Seconds float64 `json:"seconds"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Seconds <= 0 {
		fail(w, 400, "seconds must be above 0")
		return
	}
	e.SetTokenTTL(time.Duration(body.Seconds * float64(time.Second)))
	w.WriteHeader(204)
}
