package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// ContainerInput names a container in a region.
type ContainerInput struct {
	Region    string `json:"region"`
	Container string `json:"container"`
}

// EnsureContainer creates the container if it is missing.
func (a *Activities) EnsureContainer(ctx context.Context, in ContainerInput) error {
	return temporalError(a.cloud.EnsureContainer(ctx, in.Region, in.Container), "")
}

// DeleteObjectsInput deletes every object under Prefix in a container.
type DeleteObjectsInput struct {
	Region    string `json:"region"`
	Container string `json:"container"`
	Prefix    string `json:"prefix"`
}

// DeleteObjects removes the objects under the prefix with bulk delete and returns how many went.
// A missing container means there is nothing to delete.
func (a *Activities) DeleteObjects(ctx context.Context, in DeleteObjectsInput) (int, error) {
	if in.Prefix == "" {
		return 0, nonRetryable(ErrInvalid, "refusing to delete a whole container: DeleteObjects needs a prefix")
	}
	objs, err := a.cloud.ListObjects(ctx, in.Region, in.Container, in.Prefix)
	if cloud.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, temporalError(err, "")
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	n, err := a.cloud.DeleteObjects(ctx, in.Region, in.Container, names)
	return n, temporalError(err, "")
}

// CleanupInput deletes everything under Prefix in Container in each region.
type CleanupInput struct {
	Cloud     string   `json:"cloud,omitempty"` // a peer the worker holds; "" for its own
	Regions   []string `json:"regions"`
	Container string   `json:"container"`
	Prefix    string   `json:"prefix"`
}

// DeleteObjectsInRegions is DeleteObjects over several regions; it returns the total deleted.
// A container left empty goes too (a migration's container is its own); one that still holds
// something (another migration of the same run's objects, a user's) stays.
func (a *Activities) DeleteObjectsInRegions(ctx context.Context, in CleanupInput) (int, error) {
	a, err := a.as(in.Cloud)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range in.Regions {
		n, err := a.DeleteObjects(ctx, DeleteObjectsInput{Region: r, Container: in.Container, Prefix: in.Prefix})
		total += n
		if err != nil {
			return total, err
		}
		if _, err := a.cloud.DeleteContainerIfEmpty(ctx, r, in.Container); err != nil {
			return total, temporalError(err, "")
		}
	}
	return total, nil
}

// CopyInput copies an object to another region of the same account.
type CopyInput struct {
	Source cloud.ObjectRef `json:"source"`
	Target cloud.ObjectRef `json:"target"`
	// ExpectedMD5 is the whole object's MD5 (the image checksum) checked at the target when the
	// worker is configured to verify copies.
	ExpectedMD5 string `json:"expected_md5,omitempty"`
	// Lineage, when set, copies incrementally against the lineage's kept generation.
	Lineage *cloud.Lineage `json:"lineage,omitempty"`
	// TargetCloud is a peer the worker holds when the target is another cloud or account.
	TargetCloud string `json:"target_cloud,omitempty"`
	// ProvenAtEnd: the caller checks the whole copy end to end afterwards (an import's checksum
	// against ExpectedMD5), so pieces cut from source segments are not hashed on their way.
	ProvenAtEnd bool `json:"proven_at_end,omitempty"`
	// Recheck follows a failed end-to-end check: what earlier attempts recorded is distrusted,
	// cut pieces are read again from the source and hashed, and those that differ sent again.
	Recheck bool `json:"recheck,omitempty"`
	// ExpectedEnd is when the run expects the copy to end (zero: it has no estimate); the copy
	// tells the run its measured end when that moves away (EtaSignal).
	ExpectedEnd time.Time `json:"expected_end,omitzero"`
}

// CopyObjectAcrossRegions streams the object across regions in parallel segments. Progress
// (segments and bytes) is recorded as heartbeat details; a retry reads them back and skips the
// segments already at the target.
func (a *Activities) CopyObjectAcrossRegions(ctx context.Context, in CopyInput) (cloud.CopyResult, error) {
	target, err := a.as(in.TargetCloud)
	if err != nil {
		return cloud.CopyResult{}, err
	}
	if in.Source.Region == in.Target.Region && in.TargetCloud == "" {
		return cloud.CopyResult{}, nonRetryable(
			ErrInvalid,
			fmt.Sprintf("source and target are both in %s; a copy within a region needs no transfer", in.Source.Region),
		)
	}
	var prev cloud.CopyProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	hb := startBeat(ctx, prev)
	defer hb.stop()
	eta := newEtaTeller(ctx, in.Target.Region, in.ExpectedEnd, a.cfg.EtaShift)
	opts := cloud.CopyOptions{Parallelism: a.cfg.CopyParallelism, MaxParallelism: a.cfg.CopyMaxParallelism,
		SegmentSize: a.cfg.CopySegmentSize, Done: prev.Done,
		Progress: func(p cloud.CopyProgress) { hb.set(p); eta.observe(p) }, Lineage: in.Lineage, Target: target.cloud,
		ProvenAtEnd: in.ProvenAtEnd, Recheck: in.Recheck}
	waitOutFaults(ctx, &opts)
	if l := in.Lineage; l != nil && l.RangeSize <= 0 {
		withSize := *l
		withSize.RangeSize = a.cfg.LineageRangeSize
		opts.Lineage = &withSize
	}
	if a.cfg.CopyVerify {
		opts.VerifyMD5 = in.ExpectedMD5
	}
	started := time.Now()
	res, err := a.cloud.CopyAcrossRegions(ctx, in.Source, in.Target, opts)
	hb.stop()
	if err == nil {
		a.meter.observe(false, res.BytesSent, time.Since(started))
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return res, err
		}
		if cloud.KindOf(err) == cloud.Invalid && opts.VerifyMD5 != "" {
			return res, nonRetryable(ErrIntegrity, err.Error())
		}
		return res, temporalError(err, "")
	}
	activity.GetLogger(ctx).Info("copy finished", "source", in.Source.String(), "target", in.Target.String(),
		"bytes", res.Bytes, "sent", res.BytesSent, "reused", res.BytesReused, "segments", res.Segments,
		"skipped", res.SegmentsSkipped)
	return res, nil
}

// waitOutFaults makes a copy wait out faults that outlast its quick retries inside the attempt,
// its run told at once which side fails: an attempt that failed instead waited out Temporal's
// backoff after the fault ended (a copy resumed 98 s after its source recovered).
func waitOutFaults(ctx context.Context, opts *cloud.CopyOptions) {
	opts.OnWait = func(reason string) { WaitingInside(ctx, reason) }
	opts.OnBack = func() { WaitOver(ctx) }
}

// FinishMigrationInput ends a migration: optional cleanup, then the final fact.
type FinishMigrationInput struct {
	Cleanup *CleanupInput `json:"cleanup,omitempty"`
	// TargetCleanup is the cleanup in a peer's target regions, when the targets are a peer's.
	TargetCleanup *CleanupInput `json:"target_cleanup,omitempty"`
	Fact          Fact          `json:"fact"`
}

// FinishMigration deletes intermediate objects (when asked) and publishes the final fact.
func (a *Activities) FinishMigration(ctx context.Context, in FinishMigrationInput) (int, error) {
	hb := startBeat(ctx, nil)
	defer hb.stop()
	n := 0
	for _, c := range []*CleanupInput{in.Cleanup, in.TargetCleanup} {
		if c == nil {
			continue
		}
		m, err := a.DeleteObjectsInRegions(ctx, *c)
		if n += m; err != nil {
			return n, err
		}
	}
	return n, a.PublishFact(ctx, in.Fact)
}
