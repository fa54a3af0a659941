package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Error types a run fails with, beside the activities' own.
const (
	// ErrInvalidRequest: a request rejected before any work.
	ErrInvalidRequest = "InvalidRequest"
	// ErrDeadlineUnreachable: the estimate says the work cannot end by its deadline.
	ErrDeadlineUnreachable = "DeadlineUnreachable"
	// ErrDeadlinePassed: the deadline passed during the work, which was cancelled.
	ErrDeadlinePassed = "DeadlinePassed"
)

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidRequest, nil)
}

// failWith adds context to an activity failure while keeping its error type (NotExportable,
// NotFound, TaskFailed...) at the top, so callers and the UI see the reason first.
func failWith(err error, format string, args ...any) error {
	if err == nil || temporal.IsCanceledError(err) {
		return err
	}
	msg := fmt.Sprintf(format, args...)
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return temporal.NewNonRetryableApplicationError(msg+": "+ae.Message(), ae.Type(), err)
	}
	return temporal.NewNonRetryableApplicationError(msg+": "+err.Error(), "Failed", err)
}

// reason is the human part of an activity failure: the application error's own message.
func reason(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}
