package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestIncrementalRemigration: last night's snapshot is migrated whole; tonight's, with 5% of
// its blocks changed in one cluster, sends only the changed ranges across and reuses the rest
// inside the target. The imported image is the snapshot to the byte (its checksum), and the
// lineage keeps just the newest generation.
func TestIncrementalRemigration(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	night1 := find(t, demo, "DFW", "demo-db-01")
	migrate := func(imageID string) workflows.MigrateResult {
		t.Helper()
		in := workflows.MigrateInput{ImageID: imageID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
			LineageKeep: 1}
		run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo",
			imageID), workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		env.AwaitCleanup(res.Cleanup)
		return res
	}
	first := migrate(night1.ID).Targets[0]
	if first.BytesSent != night1.Size || first.BytesReused != 0 {
		t.Fatalf("first night %+v", first)
	}
	id, err := env.Emulator.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: night1.ID, Name: "db-night-2",
		ChangedPercent: 5, Pattern: "clustered"})
	if err != nil {
		t.Fatal(err)
	}
	night2, err := demo.GetImage(ctx, "DFW", id)
	if err != nil {
		t.Fatal(err)
	}
	second := migrate(id).Targets[0]
	img, err := demo.GetImage(ctx, "IAD", second.ImageID)
	if err != nil || img.Checksum != night2.Checksum {
		t.Fatalf("second night's image %+v (%v), want checksum %s", img, err, night2.Checksum)
	}
	if second.BytesSent*10 > night2.Size || second.BytesSent+second.BytesReused != night2.Size {
		t.Fatalf("second night sent %d and reused %d of %d bytes", second.BytesSent, second.BytesReused, night2.Size)
	}
	cs, err := demo.ListContainers(ctx, "IAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if !strings.HasPrefix(c.Name, "imageflow-lineage-") {
			continue
		}
		// Keep 1: of the first night only the segments the second names in place remain.
		old, err := demo.ListObjects(ctx, "IAD", c.Name, night1.ID+"/")
		if err != nil || int64(len(old)) != second.BytesReused/testenv.ActivityConfig.LineageRangeSize {
			t.Fatalf("lineage %s keeps %d objects of the first night; the second reuses %d ranges", c.Name,
				len(old), second.BytesReused/testenv.ActivityConfig.LineageRangeSize)
		}
		for _, o := range old {
			if strings.HasSuffix(o.Name, "ranges.json") {
				t.Fatalf("the first night's record %s outlived keep 1", o.Name)
			}
		}
		return
	}
	t.Fatal("no lineage container in IAD")
}
