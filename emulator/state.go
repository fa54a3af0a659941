package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imageflow/imageflow/emulator/identity"
	"github.com/imageflow/imageflow/emulator/images"
	"github.com/imageflow/imageflow/emulator/objectstorage"
)

// state is everything the emulator remembers, saved whole as JSON: each service's part of it.
type state struct {
	Regions map[string]*region         `json:"regions"`
	Tokens  map[string]*identity.Token `json:"tokens"`
}

// region is a region's images and tasks (the images service's) and files (object storage's).
type region struct {
	*images.Region
	Files objectstorage.Files `json:"files"`
	// AccountMeta is tenant -> the account's metadata (X-Account-Meta-*), object storage's.
	AccountMeta map[string]map[string]string `json:"account_meta,omitempty"`
}

func newState() *state {
	st := &state{}
	st.fill()
	return st
}

// fill makes every map a loaded state may lack, so handlers never meet a nil map.
func (st *state) fill() {
	if st.Regions == nil {
		st.Regions = map[string]*region{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*identity.Token{}
	}
	for _, name := range Regions {
		st.addRegion(name)
	}
	for _, r := range st.Regions {
		if r.Region == nil {
			r.Region = &images.Region{}
		}
		r.Fill()
		if r.Files == nil {
			r.Files = objectstorage.Files{}
		}
		if r.AccountMeta == nil {
			r.AccountMeta = map[string]map[string]string{}
		}
		for _, cs := range r.Files {
			for _, c := range cs {
				if c.Objects == nil {
					c.Objects = map[string]*objectstorage.Object{}
				}
			}
		}
	}
}

// addRegion makes an empty region unless the state has it.
func (st *state) addRegion(name string) {
	if st.Regions[name] == nil {
		r := &region{Region: &images.Region{}, Files: objectstorage.Files{},
			AccountMeta: map[string]map[string]string{}}
		r.Fill()
		st.Regions[name] = r
	}
}

// imageRegions and files are the services' views of the state.
func (st *state) imageRegions() map[string]*images.Region {
	out := map[string]*images.Region{}
	for name, r := range st.Regions {
		out[name] = r.Region
	}
	return out
}

func (st *state) files() map[string]objectstorage.Files {
	out := map[string]objectstorage.Files{}
	for name, r := range st.Regions {
		out[name] = r.Files
	}
	return out
}

func (st *state) accountMeta() map[string]map[string]map[string]string {
	out := map[string]map[string]map[string]string{}
	for name, r := range st.Regions {
		out[name] = r.AccountMeta
	}
	return out
}

const stateFile = "state.json"

func (e *Emulator) load() (*state, error) {
	path := filepath.Join(e.dataDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read emulator state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parse emulator state %s: %w", path, err)
	}
	st.fill()
	return st, nil
}

// saveLocked writes the whole state atomically (write then rename), so a crash never leaves a
// half-written file behind. Call with the store locked.
func (e *Emulator) saveLocked() error {
	b, err := json.Marshal(e.st)
	if err != nil {
		return fmt.Errorf("encode emulator state: %w", err)
	}
	tmp := filepath.Join(e.dataDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write emulator state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dataDir, stateFile)); err != nil {
		return fmt.Errorf("write emulator state: %w", err)
	}
	return nil
}

func (e *Emulator) save() error {
	e.store.Lock()
	defer e.store.Unlock()
	return e.saveLocked()
}

// saveDelay gathers changes into one write of the state. Writing the whole state after every
// change made a burst of N changes cost N writes of a state that grows with N: ten thousand share
// offers took minutes. A crash of the process loses the changes since the last write (this, or
// ten times a write's duration for a large state); Close writes the rest.
const saveDelay = 50 * time.Millisecond

// saveLoop writes the state after changes until Close: at most once per saveDelay, and never
// more than a tenth of the time, since a write costs in proportion to the whole state (a bench
// with ten thousand images spent half a core writing it every 50 ms).
func (e *Emulator) saveLoop() {
	defer e.saver.Done()
	wait := saveDelay
	for {
		select {
		case <-e.store.Closing():
			return
		case <-e.store.Changed():
		}
		if !e.store.Sleep(wait) {
			return
		}
		e.store.Lock()
		if e.store.TakeDirty() {
			start := time.Now()
			if err := e.saveLocked(); err != nil {
				e.log.Error("save state", "err", err)
			}
			wait = max(saveDelay, 9*time.Since(start))
		}
		e.store.Unlock()
	}
}
