package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imageflow/imageflow/cloud"
)

// Rates are the throughputs a migration's duration is estimated from.
type Rates struct {
	// CopyBytesPerSecond is a cross-region copy's throughput.
	CopyBytesPerSecond float64 `json:"copy_bytes_per_second"`
	// TaskBytesPerSecond is an export or import task's throughput, as the cloud runs them.
	TaskBytesPerSecond float64 `json:"task_bytes_per_second"`
	// Basis says where the rates come from: "configured", or "measured" over this worker's
	// recent copies and tasks.
	Basis string `json:"basis"`
}

// Estimate is how long a migration's stages should take, and why.
type Estimate struct {
	Bytes         int64   `json:"bytes"`
	ExportSeconds float64 `json:"export_seconds"`
	CopySeconds   float64 `json:"copy_seconds"`
	ImportSeconds float64 `json:"import_seconds"`
	// TotalSeconds is export, then copy and import (targets run in parallel, so one of each).
	TotalSeconds float64 `json:"total_seconds"`
	Rates        Rates   `json:"rates"`
}

// Estimate is the time to move bytes: an export (unless skipped), a copy and an import.
func (r Rates) Estimate(bytes int64, export bool) Estimate {
	e := Estimate{Bytes: bytes, Rates: r}
	per := func(rate float64) float64 {
		if rate <= 0 {
			return 0
		}
		return float64(bytes) / rate
	}
	if export {
		e.ExportSeconds = per(r.TaskBytesPerSecond)
	}
	e.CopySeconds, e.ImportSeconds = per(r.CopyBytesPerSecond), per(r.TaskBytesPerSecond)
	e.TotalSeconds = e.ExportSeconds + e.CopySeconds + e.ImportSeconds
	return e
}

// Text is the estimate for a person: "about 1h20m (12.0 MiB/s copy, 20.0 MiB/s tasks, measured)".
func (e Estimate) Text() string {
	d := time.Duration(e.TotalSeconds * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("about %s (%.1f MiB/s copy, %.1f MiB/s tasks, %s)", d,
		e.Rates.CopyBytesPerSecond/(1<<20), e.Rates.TaskBytesPerSecond/(1<<20), e.Rates.Basis)
}

// meter keeps the worker's measured throughputs: the configured rates until the first
// measurement of each, then a moving average that weights recent runs most.
type meter struct {
	mu            sync.Mutex
	rates         Rates
	copies, tasks int // measurements taken
}

// ewmaWeight is the share a new measurement takes: recent links and task queues matter most.
const ewmaWeight = 0.3

func newMeter(copyRate, taskRate float64) *meter {
	return &meter{rates: Rates{CopyBytesPerSecond: copyRate, TaskBytesPerSecond: taskRate, Basis: "configured"}}
}

func (m *meter) current() Rates {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rates
}

// observe folds one measurement (bytes moved in d) into the copy or task rate. Small moves
// (under a MiB or a second) say more about latency than throughput and are left out.
func (m *meter) observe(task bool, bytes int64, d time.Duration) {
	if bytes < 1<<20 || d < time.Second {
		return
	}
	rate := float64(bytes) / d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	p, n := &m.rates.CopyBytesPerSecond, &m.copies
	if task {
		p, n = &m.rates.TaskBytesPerSecond, &m.tasks
	}
	if *n == 0 || *p <= 0 {
		*p = rate
	} else {
		*p = (1-ewmaWeight)**p + ewmaWeight*rate
	}
	*n++
	switch {
	case m.copies > 0 && m.tasks > 0:
		m.rates.Basis = "measured"
	case m.copies > 0:
		m.rates.Basis = "copy measured, tasks configured"
	default:
		m.rates.Basis = "tasks measured, copy configured"
	}
}

// observeTask measures a finished task of a known size by the cloud's own timestamps, so an
// adopted task and a retried wait measure the same.
func (m *meter) observeTask(t cloud.Task, bytes int64) {
	if t.Status == "success" && !t.CreatedAt.IsZero() && t.UpdatedAt.After(t.CreatedAt) {
		m.observe(true, bytes, t.UpdatedAt.Sub(t.CreatedAt))
	}
}

// EstimateInput asks how long moving Bytes takes; Export is false when the export exists.
type EstimateInput struct {
	Bytes  int64 `json:"bytes"`
	Export bool  `json:"export"`
}

// EstimateMigration estimates a migration from this worker's measured (or configured) rates.
func (a *Activities) EstimateMigration(ctx context.Context, in EstimateInput) (Estimate, error) {
	return a.meter.current().Estimate(in.Bytes, in.Export), nil
}
