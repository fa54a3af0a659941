package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/runner"
)

// readiness is what /healthz answers while the worker starts (not ready, and why) and once it
// runs (the running worker's checks).
type readiness struct {
	mu     sync.Mutex
	why    error
	checks runner.Health
}

func (r *readiness) notReady(why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.why = why
}

func (r *readiness) running(checks runner.Health) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = checks
}

func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	checks, why := r.checks, r.why
	r.mu.Unlock()
	if checks != nil {
		return checks(ctx)
	}
	return why
}

// Waiting for the cloud at start: retries back off from waitFirst to waitCap (a cloud back from
// an outage is found within waitCap), and the log says so every waitLogEvery. Variables so the
// tests can scale them.
var (
	waitFirst    = time.Second
	waitCap      = 10 * time.Second
	waitLogEvery = time.Minute
)

// connectCloud signs in to a cloud (what names its identity service for people), waiting while
// identity is down or busy: a worker started, or restarted by its supervisor, during an outage
// waits it out instead of exiting; its /healthz says why it is not ready, and runs (nil: none)
// tells the runs on its task queue. Credentials the cloud refuses, and every other error, end
// the wait at once.
func connectCloud(ctx context.Context, what string, creds cloud.Credentials, opts cloud.Options, logger *slog.Logger,
	ready *readiness, runs *runsTold) (*cloud.Client, error) {
	var since, logged time.Time
	wait := waitFirst
	for {
		cc, err := cloud.New(ctx, creds, opts)
		switch kind := cloud.KindOf(err); {
		case err == nil:
			if !since.IsZero() {
				logger.Info(what+" answers again", "waited", time.Since(since).Round(time.Second).String())
				runs.over(ctx)
			}
			return cc, nil
		case ctx.Err() != nil:
			return nil, err
		case kind != cloud.Unavailable && kind != cloud.RateLimited:
			return nil, err
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		ready.notReady(fmt.Errorf("waiting for %s since %s UTC: %w", what, since.UTC().Format("15:04:05"), err))
		if now.Sub(logged) >= waitLogEvery {
			logger.Warn("waiting for "+what+"; the worker starts when it answers",
				"since", since.UTC().Format(time.RFC3339), "error", err.Error())
			logged = now
			runs.waiting(ctx, what, since, err)
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, waitCap)
	}
}
