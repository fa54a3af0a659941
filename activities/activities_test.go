package activities

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/emutest"
)

type fixture struct {
	t        *testing.T
	emu      *emulator.Emulator
	demo     *Activities
	partner  *Activities
	suite    testsuite.WorkflowTestSuite
	webID    string
	baseID   string
	rhelID   string
	lastBeat cloud.CopyProgress
}

func setup(t *testing.T, mod ...func(*emulator.Config)) *fixture {
	t.Helper()
	e := emutest.Start(t, mod...)
	f := &fixture{t: t, emu: e}
	f.suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	acfg := Config{
		TaskPollInterval:    20 * time.Millisecond,
		TaskPollMaxInterval: 100 * time.Millisecond,
		CopySegmentSize:     16 << 20,
		CopyVerify:          true,
	}
	f.demo = New(f.connect("demo"), acfg, nil)
	f.partner = New(f.connect("partner"), acfg, nil)
	imgs, err := f.demo.cloud.ListImages(context.Background(), "DFW", cloud.ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		switch img.Name {
		case "demo-web-01":
			f.webID = img.ID
		case "demo-rhel-01":
			f.rhelID = img.ID
		case "Debian 12 (Bookworm) (PVHVM)":
			f.baseID = img.ID
		}
	}
	return f
}

func (f *fixture) connect(user string) *cloud.Client {
	c, err := cloud.New(
		context.Background(),
		cloud.Credentials{IdentityURL: f.emu.IdentityURL(), Username: user, APIKey: user + "-api-key"},
		cloud.Options{},
	)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// run executes one activity in Temporal's activity test environment and decodes its result.
func (f *fixture) run(a *Activities, fn any, out any, args ...any) error {
	f.t.Helper()
	env := f.suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var p cloud.CopyProgress
		if d.HasValues() && d.Get(&p) == nil {
			f.lastBeat = p
		}
	})
	v, err := env.ExecuteActivity(fn, args...)
	if err == nil && out != nil {
		if derr := v.Get(out); derr != nil {
			f.t.Fatalf("decode result: %v", derr)
		}
	}
	return err
}

// wantAppErr checks err is an ApplicationError of the type, retryable or not, mentioning text.
func wantAppErr(t *testing.T, err error, typ string, retryable bool, text string) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("want ApplicationError %s, got %v", typ, err)
	}
	if ae.Type() != typ || ae.NonRetryable() == retryable || !strings.Contains(ae.Error(), text) {
		t.Fatalf(
			"got type %s non-retryable %v message %q; want %s retryable=%v containing %q",
			ae.Type(),
			ae.NonRetryable(),
			ae.Error(),
			typ,
			retryable,
			text,
		)
	}
	return ae
}

func TestImageActivities(t *testing.T) {
	f := setup(t)
	var acct Account
	if err := f.run(f.demo, f.demo.Authenticate, &acct); err != nil || acct.Tenant != "100001" ||
		acct.DefaultRegion != "DFW" {
		t.Fatalf("authenticate %v %v", acct, err)
	}
	var img cloud.Image
	if err := f.run(f.demo, f.demo.GetImage, &img, ImageRef{"DFW", f.webID}); err != nil || img.Name != "demo-web-01" {
		t.Fatalf("get %v %v", img, err)
	}
	err := f.run(f.partner, f.partner.GetImage, nil, ImageRef{"DFW", f.webID})
	wantAppErr(t, err, ErrNotFound, false, "not found in DFW for account 100002")

	var list []cloud.Image
	if err := f.run(f.demo, f.demo.ListImages, &list, ListImagesInput{Region: "DFW", Filter: cloud.ImageFilter{Tags: []string{"web"}}}); err != nil ||
		len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}

	// Validation before export: each failure is immediate and says why.
	if err := f.run(f.demo, f.demo.CheckExportable, &img, ImageRef{"DFW", f.webID}); err != nil {
		t.Fatal(err)
	}
	wantAppErr(
		t,
		f.run(f.demo, f.demo.CheckExportable, nil, ImageRef{"DFW", f.baseID}),
		ErrNotExportable,
		false,
		"base image",
	)
	wantAppErr(
		t,
		f.run(f.demo, f.demo.CheckExportable, nil, ImageRef{"DFW", f.rhelID}),
		ErrNotExportable,
		false,
		"licensed software",
	)
	wantAppErr(
		t,
		f.run(f.demo, f.demo.CheckExportable, nil, ImageRef{"DFW", "nope"}),
		ErrNotFound,
		false,
		"image nope was not found in DFW",
	)
	if err := f.run(f.demo, f.demo.AddMember, nil, MemberInput{"DFW", f.webID, "100002"}); err != nil {
		t.Fatal(err)
	}
	wantAppErr(
		t,
		f.run(f.partner, f.partner.CheckExportable, nil, ImageRef{"DFW", f.webID}),
		ErrNotExportable,
		false,
		"is not owned by account 100002 in DFW",
	)

	// Update is idempotent.
	in := UpdateImageInput{
		Region:     "DFW",
		ImageID:    f.webID,
		Properties: map[string]string{"app": "web2", "new/key": "v"},
		Tags:       []string{"migrated"},
		Remove:     []string{"team"},
	}
	for i := 0; i < 2; i++ {
		img = cloud.Image{} // decoding merges into a non-empty map
		if err := f.run(f.demo, f.demo.UpdateImage, &img, in); err != nil {
			t.Fatal(err)
		}
	}
	if img.Properties["app"] != "web2" || img.Properties["new/key"] != "v" || img.Properties["team"] != "" ||
		!contains(img.Tags, "migrated") ||
		len(img.Tags) != 3 {
		t.Fatalf("after update: %+v", img)
	}
	wantAppErr(
		t,
		f.run(f.partner, f.partner.UpdateImage, nil, UpdateImageInput{Region: "DFW", ImageID: f.webID, Name: "x"}),
		ErrForbidden,
		false,
		"403",
	)

	// FindImageByProperty: none, one, then two is a conflict.
	var found FindImageResult
	if err := f.run(f.demo, f.demo.FindImageByProperty, &found, FindImageInput{"DFW", "app", "web2"}); err != nil ||
		!found.Found ||
		found.Image.ID != f.webID {
		t.Fatalf("find %+v %v", found, err)
	}
	if err := f.run(f.demo, f.demo.FindImageByProperty, &found, FindImageInput{"DFW", "app", "nothing"}); err != nil ||
		found.Found {
		t.Fatalf("find none %+v %v", found, err)
	}
	dbID := ""
	for _, i := range mustList(t, f) {
		if i.Name == "demo-db-01" {
			dbID = i.ID
		}
	}
	if err := f.run(f.demo, f.demo.UpdateImage, nil, UpdateImageInput{Region: "DFW", ImageID: dbID, Properties: map[string]string{"app": "web2"}}); err != nil {
		t.Fatal(err)
	}
	wantAppErr(
		t,
		f.run(f.demo, f.demo.FindImageByProperty, nil, FindImageInput{"DFW", "app", "web2"}),
		ErrConflict,
		false,
		"2 images in DFW carry app=web2",
	)
}

func mustList(t *testing.T, f *fixture) []cloud.Image {
	imgs, err := f.demo.cloud.ListImages(context.Background(), "DFW", cloud.ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func TestMemberActivities(t *testing.T) {
	f := setup(t)
	var m cloud.Member
	for i := 0; i < 2; i++ { // adding twice counts as done
		if err := f.run(f.demo, f.demo.AddMember, &m, MemberInput{"DFW", f.webID, "100002"}); err != nil ||
			m.Status != "pending" {
			t.Fatalf("add #%d: %+v %v", i, m, err)
		}
	}
	wantAppErr(
		t,
		f.run(f.partner, f.partner.AddMember, nil, MemberInput{"DFW", f.webID, "100003"}),
		ErrNotFound,
		false,
		"not owned by account 100002",
	)
	if err := f.run(f.partner, f.partner.UpdateMember, &m, UpdateMemberInput{"DFW", f.webID, "accepted"}); err != nil ||
		m.Status != "accepted" {
		t.Fatalf("accept %+v %v", m, err)
	}
	// The producer can never accept on the consumer's behalf: its UpdateMember acts as itself.
	wantAppErr(
		t,
		f.run(f.demo, f.demo.UpdateMember, nil, UpdateMemberInput{"DFW", f.webID, "accepted"}),
		ErrNotFound,
		false,
		"not shared with account 100001",
	)
	if err := f.run(f.demo, f.demo.GetMember, &m, MemberInput{"DFW", f.webID, "100002"}); err != nil ||
		m.Status != "accepted" {
		t.Fatalf("get %+v %v", m, err)
	}
	var ms []cloud.Member
	if err := f.run(f.demo, f.demo.ListMembers, &ms, ImageRef{"DFW", f.webID}); err != nil || len(ms) != 1 {
		t.Fatalf("list %+v %v", ms, err)
	}
	for i := 0; i < 2; i++ { // deleting twice counts as done
		if err := f.run(f.demo, f.demo.DeleteMember, nil, MemberInput{"DFW", f.webID, "100002"}); err != nil {
			t.Fatalf("delete #%d: %v", i, err)
		}
	}
	wantAppErr(
		t,
		f.run(f.partner, f.partner.DeleteMember, nil, MemberInput{"DFW", f.webID, "100002"}),
		ErrNotFound,
		false,
		"404",
	)
}

func TestTaskActivities(t *testing.T) {
	f := setup(t)
	if err := f.run(f.demo, f.demo.EnsureContainer, nil, ContainerInput{"DFW", "exports"}); err != nil {
		t.Fatal(err)
	}
	// A chosen export fails: WaitForTask says why, without retrying.
	_ = f.emu.AddFault(
		emulator.Fault{
			Kind:     "task-failure",
			TaskType: "export",
			Image:    f.webID,
			Count:    1,
			Message:  "Error code 111: storage node lost",
		},
	)
	var tk cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &tk, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil {
		t.Fatal(err)
	}
	wantAppErr(
		t,
		f.run(f.demo, f.demo.WaitForTask, nil, TaskRef{"DFW", tk.ID}),
		ErrTaskFailed,
		false,
		"storage node lost",
	)
	// Then it works, and a repeated StartExport finds the finished export instead of failing.
	if err := f.run(f.demo, f.demo.StartExport, &tk, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil {
		t.Fatal(err)
	}
	if err := f.run(f.demo, f.demo.WaitForTask, &tk, TaskRef{"DFW", tk.ID}); err != nil || tk.Status != "success" {
		t.Fatalf("export %+v %v", tk, err)
	}
	var again cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &again, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil ||
		!again.Done() ||
		again.Result["export_location"] != tk.Result["export_location"] {
		t.Fatalf("repeat export %+v %v", again, err)
	}
	if err := f.run(f.demo, f.demo.GetTask, &again, TaskRef{"DFW", tk.ID}); err != nil || again.Status != "success" {
		t.Fatalf("get task %+v %v", again, err)
	}

	// Copy to IAD, import, check the new image.
	src := cloud.ObjectRef{Region: "DFW", Container: "exports", Object: f.webID + ".vhd"}
	var res cloud.CopyResult
	img, _ := f.demo.cloud.GetImage(context.Background(), "DFW", f.webID)
	err := f.run(
		f.demo,
		f.demo.CopyObjectAcrossRegions,
		&res,
		CopyInput{
			Source:      src,
			Target:      cloud.ObjectRef{Region: "IAD", Container: "imports", Object: "web.vhd"},
			ExpectedMD5: img.Checksum,
		},
	)
	if err != nil || res.Bytes != img.Size || res.Segments < 4 {
		t.Fatalf("copy %+v %v", res, err)
	}
	// Heartbeats are throttled: the first (the totals, before any byte) is sent at once.
	if f.lastBeat.BytesTotal != img.Size || f.lastBeat.TargetRegion != "IAD" {
		t.Fatalf("no progress heartbeat: %+v", f.lastBeat)
	}
	if err := f.run(f.demo, f.demo.StartImport, &tk, ImportInput{Region: "IAD", Container: "imports", Object: "web.vhd", Name: "web (IAD)"}); err != nil {
		t.Fatal(err)
	}
	var repeat cloud.Task
	if err := f.run(f.demo, f.demo.StartImport, &repeat, ImportInput{Region: "IAD", Container: "imports", Object: "web.vhd", Name: "web (IAD)"}); err != nil ||
		repeat.ID != tk.ID {
		t.Fatalf("a repeated StartImport started task %s, want the first one %s (%v)", repeat.ID, tk.ID, err)
	}
	if err := f.run(f.demo, f.demo.WaitForTask, &tk, TaskRef{"IAD", tk.ID}); err != nil {
		t.Fatal(err)
	}
	var imported cloud.Image
	if err := f.run(f.demo, f.demo.GetImage, &imported, ImageRef{"IAD", tk.Result["image_id"]}); err != nil ||
		imported.Checksum != img.Checksum {
		t.Fatalf("imported %+v %v", imported, err)
	}
	// Importing something that is not a VHD fails with Rackspace's code.
	if err := f.demo.cloud.EnsureContainer(context.Background(), "IAD", "junk"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.demo.cloud.PutStream(context.Background(), "IAD", "junk", "notes.txt", strings.NewReader(strings.Repeat("hello ", 200)), 1200, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.run(f.demo, f.demo.StartImport, &tk, ImportInput{Region: "IAD", Container: "junk", Object: "notes.txt", Name: "junk"}); err != nil {
		t.Fatal(err)
	}
	wantAppErr(t, f.run(f.demo, f.demo.WaitForTask, nil, TaskRef{"IAD", tk.ID}), ErrTaskFailed, false, "Error code 396")

	// Cleanup by prefix removes the copy's segments and manifest.
	var n int
	if err := f.run(f.demo, f.demo.DeleteObjects, &n, DeleteObjectsInput{"IAD", "imports", "web.vhd"}); err != nil ||
		n != res.Segments+1 {
		t.Fatalf("delete objects %d %v", n, err)
	}
	wantAppErr(
		t,
		f.run(f.demo, f.demo.DeleteObjects, nil, DeleteObjectsInput{"IAD", "imports", ""}),
		ErrInvalid,
		false,
		"needs a prefix",
	)
	wantAppErr(
		t,
		f.run(f.demo, f.demo.CopyObjectAcrossRegions, nil, CopyInput{Source: src, Target: src}),
		ErrInvalid,
		false,
		"both in DFW",
	)
}

func TestRetryableErrorClasses(t *testing.T) {
	f := setup(t)
	slow := New(
		f.connectWith("demo", cloud.Options{Pacing: cloud.Pacing{MaxRetryAfterWait: time.Millisecond}}),
		Config{},
		nil,
	)
	_ = f.emu.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images", RetryAfter: 9, Count: 1})
	ae := wantAppErr(
		t,
		f.run(slow, slow.GetImage, nil, ImageRef{"DFW", f.webID}),
		ErrRateLimited,
		true,
		"retry after 9s",
	)
	if ae.NextRetryDelay() != 9*time.Second {
		t.Fatalf("next retry delay %v, want the cloud's Retry-After", ae.NextRetryDelay())
	}
	_ = f.emu.AddFault(emulator.Fault{Kind: "error", Region: "DFW", Service: "images", Status: 503, Count: 1})
	wantAppErr(t, f.run(f.demo, f.demo.GetImage, nil, ImageRef{"DFW", f.webID}), ErrUnavailable, true, "503")
	// A transient failure while polling a task does not end the wait.
	if err := f.run(f.demo, f.demo.EnsureContainer, nil, ContainerInput{"DFW", "exports"}); err != nil {
		t.Fatal(err)
	}
	var tk cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &tk, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil {
		t.Fatal(err)
	}
	_ = f.emu.AddFault(
		emulator.Fault{Kind: "error", Region: "DFW", Service: "images", Path: "/v2/tasks/", Status: 503, Count: 2},
	)
	if err := f.run(f.demo, f.demo.WaitForTask, &tk, TaskRef{"DFW", tk.ID}); err != nil || tk.Status != "success" {
		t.Fatalf("wait through 503s: %+v %v", tk, err)
	}
}

func (f *fixture) connectWith(user string, o cloud.Options) *cloud.Client {
	c, err := cloud.New(
		context.Background(),
		cloud.Credentials{IdentityURL: f.emu.IdentityURL(), Username: user, APIKey: user + "-api-key"},
		o,
	)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// TestCopyResumesFromHeartbeatDetails: an attempt's heartbeat details reach the next attempt,
// which sends only what is missing.
func TestCopyResumesFromHeartbeatDetails(t *testing.T) {
	f := setup(t, func(c *emulator.Config) { c.ExportSegmentSize = 32 << 20 })
	ctx := context.Background()
	if err := f.demo.cloud.EnsureContainer(ctx, "DFW", "exports"); err != nil {
		t.Fatal(err)
	}
	var tk cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &tk, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil {
		t.Fatal(err)
	}
	if err := f.run(f.demo, f.demo.WaitForTask, &tk, TaskRef{"DFW", tk.ID}); err != nil {
		t.Fatal(err)
	}
	src := cloud.ObjectRef{Region: "DFW", Container: "exports", Object: f.webID + ".vhd"}
	dst := cloud.ObjectRef{Region: "HKG", Container: "in", Object: "web.vhd"}
	cctx, cancel := context.WithCancel(ctx)
	var prev cloud.CopyProgress
	_, _ = f.demo.cloud.CopyAcrossRegions(
		cctx,
		src,
		dst,
		cloud.CopyOptions{Parallelism: 1, SegmentSize: 16 << 20, Progress: func(p cloud.CopyProgress) {
			if prev = p; p.SegmentsDone == 2 {
				cancel()
			}
		}},
	)
	if prev.SegmentsDone != 2 || prev.SegmentsTotal != 4 {
		t.Fatalf("first attempt %+v", prev)
	}
	env := f.suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.demo)
	env.SetHeartbeatDetails(prev)
	v, err := env.ExecuteActivity(f.demo.CopyObjectAcrossRegions, CopyInput{Source: src, Target: dst})
	if err != nil {
		t.Fatal(err)
	}
	var res cloud.CopyResult
	_ = v.Get(&res)
	if res.SegmentsSkipped != 2 || res.BytesSent != 2*(16<<20) {
		t.Fatalf("resumed copy %+v", res)
	}
}

func TestOfferAndSettle(t *testing.T) {
	f := setup(t)
	in := OfferInput{Region: "DFW", ImageID: f.webID, Member: "100002", ShareWorkflowID: "share-x"}
	var m cloud.Member
	if err := f.run(f.demo, f.demo.OfferShare, &m, in); err != nil || m.Status != "pending" {
		t.Fatalf("offer %+v %v", m, err)
	}
	settle := SettleInput{
		Region:          "DFW",
		ImageID:         f.webID,
		Member:          "100002",
		ShareWorkflowID: "share-x",
		OnReject:        "revoke",
		OnTimeout:       "keep",
	}
	var res SettleResult
	if err := f.run(f.demo, f.demo.SettleMember, &res, settle); err != nil || res.Status != "pending" {
		t.Fatalf("settle while pending %+v %v", res, err)
	}
	if _, err := f.partner.cloud.UpdateMember(context.Background(), "DFW", f.webID, "rejected"); err != nil {
		t.Fatal(err)
	}
	if err := f.run(f.demo, f.demo.SettleMember, &res, settle); err != nil || res.Status != "rejected" || !res.Revoked {
		t.Fatalf("settle rejected %+v %v", res, err)
	}
	if _, err := f.demo.cloud.GetMember(context.Background(), "DFW", f.webID, "100002"); !cloud.IsNotFound(err) {
		t.Fatalf("revoked member still there: %v", err)
	}
	// Offered again and left unanswered past the deadline, with keep: expired, still a member.
	if err := f.run(f.demo, f.demo.OfferShare, &m, in); err != nil {
		t.Fatal(err)
	}
	settle.Expired = true
	if err := f.run(f.demo, f.demo.SettleMember, &res, settle); err != nil || res.Status != "expired" || res.Revoked {
		t.Fatalf("settle expired %+v %v", res, err)
	}
}
