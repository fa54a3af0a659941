//go:build realopenstack

package realopenstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// withoutMethod answers /v2/info/import without one import method, so the worker believes the
// region does not offer it; everything else passes through counted.
type withoutMethod struct {
	testenv.ReadCounter
	method string
}

func (w *withoutMethod) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.ReadCounter.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/v2/info/import") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b = bytes.ReplaceAll(b, []byte(`"`+w.method+`"`), []byte(`"hidden-by-test"`))
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TestStagedUploadOnTheRig: with glance-download hidden from the worker, a migration RegionOne ->
// RegionTwo is staged in RegionTwo's Swift and pulled by its Glance with web-download of a
// temporary URL (the result says "staged"); with every import method hidden it streams. Both
// arrive with the source's checksum; the staging is gone afterwards; times and bytes are logged.
func TestStagedUploadOnTheRig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	size := int64(256 << 20)
	data := make([]byte, size)
	_, _ = rand.Read(data)
	env := testenv.New(t)
	for _, want := range []string{"staged", "streamed"} {
		tr := &withoutMethod{method: cloud.MethodGlanceDownload}
		if want == "streamed" {
			tr.Hide = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/v2/info/import") }
		}
		creds, _, err := cloud.FromCloudsYAML("alpha")
		if err != nil {
			t.Fatal(err)
		}
		alpha, err := cloud.New(ctx, creds, cloud.Options{Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		if !alpha.HasObjectStore("RegionTwo") {
			t.Fatal("RegionTwo has no object store: start the rig with OS_RIG_SWIFT=1 (run.sh does)")
		}
		src, err := alpha.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "imageflow-staged-" +
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
		user := "alpha-" + want
		env.StartWorker(user, testenv.WorkerOptions{Cloud: alpha})
		before := tr.Read.Load()
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
		took, read := time.Since(began), tr.Read.Load()-before
		target := res.Targets[0]
		img, err := alpha.GetImage(ctx, "RegionTwo", target.ImageID)
		if err != nil || img.Checksum != src.Checksum || target.Path != want {
			t.Fatalf("RegionTwo copy %+v (%v) by %q, want checksum %s by %s", img, err, target.Path, src.Checksum, want)
		}
		t.Logf("%s: %d MiB in %.1fs, the worker read %d MiB and sent %d MiB", want, size>>20, took.Seconds(),
			read>>20, target.BytesSent>>20)
		env.AwaitCleanup(res.Cleanup) // the staging is deleted by the migration's own cleanup run
		cs, err := alpha.ListContainers(ctx, "RegionTwo")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if strings.HasPrefix(c.Name, "imageflow-") {
				t.Fatalf("RegionTwo keeps %s (%d objects) after the migration", c.Name, c.Count)
			}
		}
		for r, id := range map[string]string{"RegionOne": src.ID, "RegionTwo": img.ID} {
			_ = alpha.DeleteImage(context.Background(), r, id)
		}
	}
}
