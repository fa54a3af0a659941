package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/cloud"
)

// Error types workflows can match with temporal.ApplicationError.Type().
const (
	ErrNotFound      = "NotFound"
	ErrForbidden     = "Forbidden"
	ErrConflict      = "Conflict"
	ErrInvalid       = "Invalid"
	ErrRateLimited   = "RateLimited"
	ErrUnavailable   = "Unavailable"
	ErrUnauthorized  = "Unauthorized"
	ErrNotExportable = "NotExportable"
	ErrTaskFailed    = "TaskFailed"
	ErrIntegrity     = "IntegrityCheckFailed"
)

// temporalError turns a cloud failure into the Temporal error a workflow should see. msg, when
// not empty, replaces the cloud's wording with one a person can act on. Client mistakes (not
// found, forbidden, conflict, invalid, bad credentials) are non-retryable; a rate limit retries
// after the cloud's Retry-After; an unavailable cloud retries with the activity's backoff.
func temporalError(err error, msg string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ce *cloud.Error
	if !errors.As(err, &ce) {
		return err
	}
	if msg == "" {
		msg = ce.Error()
	}
	switch ce.Kind {
	case cloud.RateLimited:
		return temporal.NewApplicationErrorWithOptions(msg, ErrRateLimited, temporal.ApplicationErrorOptions{
			NextRetryDelay: ce.RetryAfter, Cause: err})
	case cloud.Unavailable:
		// RetryAfter is set when the request waited for its host until its deadline: the next
		// attempt waits again without a request, so it need not wait for the backoff first.
		return temporal.NewApplicationErrorWithOptions(msg, ErrUnavailable,
			temporal.ApplicationErrorOptions{NextRetryDelay: ce.RetryAfter, Cause: err})
	}
	return temporal.NewNonRetryableApplicationError(msg, string(ce.Kind), err)
}

// nonRetryable is a failure no retry can fix, with a message for a person.
func nonRetryable(errType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}
