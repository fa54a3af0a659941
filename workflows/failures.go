package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// ErrInvalidRequest is the error type of a request rejected before any work.
const ErrInvalidRequest = "InvalidRequest"

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
