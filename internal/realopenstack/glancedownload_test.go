//go:build realopenstack

package realopenstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestGlanceDownloadOnTheRig: RegionTwo's Glance offers glance-download (run.sh configures it),
// so a migration from RegionOne makes RegionTwo pull the image itself: the worker reads no more
// than the API's answers, against the whole image when it streams (the same migration with the
// import method hidden from the worker), and both arrive with the source's checksum.
func TestGlanceDownloadOnTheRig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if ok, err := connect(t, "alpha").Offers(ctx, "RegionTwo", cloud.MethodGlanceDownload); err != nil || !ok {
		t.Fatalf("RegionTwo does not offer glance-download (%v): start the rig with internal/realopenstack/run.sh", err)
	}
	size := int64(128 << 20)
	data := make([]byte, size)
	_, _ = rand.Read(data)
	env := testenv.New(t)
	for _, hide := range []bool{false, true} {
		ct := &testenv.ReadCounter{}
		if hide { // the worker then believes the target offers no import of its own
			ct.Hide = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/v2/info/import") }
		}
		creds, _, err := cloud.FromCloudsYAML("alpha")
		if err != nil {
			t.Fatal(err)
		}
		alpha, err := cloud.New(ctx, creds, cloud.Options{Transport: ct})
		if err != nil {
			t.Fatal(err)
		}
		src, err := alpha.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "imageflow-gd-" +
			time.Now().Format("150405.000"), DiskFormat: "raw", ContainerFormat: "bare"})
		if err != nil {
			t.Fatal(err)
		}
		if err := alpha.UploadImageData(ctx, "RegionOne", src.ID, bytes.NewReader(data), size); err != nil {
			t.Fatal(err)
		}
		if src, err = alpha.GetImage(ctx, "RegionOne", src.ID); err != nil {
			t.Fatal(err)
		}
		user := map[bool]string{false: "alpha", true: "alpha-streams"}[hide]
		env.StartWorker(user, testenv.WorkerOptions{Cloud: alpha})
		before := ct.Read.Load()
		in := workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{"RegionTwo"}}
		opts := workflows.StartOptions(workflows.MigrateWorkflowID(alpha.Tenant(), in), testenv.TaskQueue(user))
		began := time.Now()
		run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		took, read := time.Since(began), ct.Read.Load()-before
		img, err := alpha.GetImage(ctx, "RegionTwo", res.Targets[0].ImageID)
		if err != nil || img.Checksum != src.Checksum {
			t.Fatalf("RegionTwo copy %+v (%v), want checksum %s", img, err, src.Checksum)
		}
		how := map[bool]string{false: "glance-download", true: "streamed through the worker"}[hide]
		t.Logf("%s: %d MiB in %.1fs, the worker read %d bytes", how, size>>20, took.Seconds(), read)
		if (!hide && read > 1<<20) || (hide && read < size) {
			t.Fatalf("%s: the worker read %d bytes of a %d-byte image", how, read, size)
		}
		for _, r := range []string{"RegionOne", "RegionTwo"} {
			id := map[string]string{"RegionOne": src.ID, "RegionTwo": img.ID}[r]
			_ = alpha.DeleteImage(context.Background(), r, id)
		}
	}
}
