package emulator_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/imageflow/imageflow/emulator"
)

// clients authenticates with gophercloud's own password auth and builds the image and
// object-store clients from the catalog, the way any OpenStack user would.
func clients(
	t *testing.T,
	e *emulator.Emulator,
	user, password, region string,
) (*gophercloud.ServiceClient, *gophercloud.ServiceClient) {
	t.Helper()
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.IdentityURL(), Username: user, Password: password, AllowReauth: true,
	})
	if err != nil {
		t.Fatalf("authenticate %s: %v", user, err)
	}
	img, err := openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	img.ResourceBase = img.Endpoint // the catalog URL already ends in /v2 (design.md, library traps)
	obj, err := openstack.NewObjectStorageV1(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return img, obj
}

func TestGophercloud(t *testing.T) {
	ctx := context.Background()
	e, err := emulator.New(emulator.Config{TaskDuration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dfwImg, dfwObj := clients(t, e, "demo", "demo-password", "DFW")
	partnerImg, _ := clients(t, e, "partner", "partner-password", "DFW")

	// Images: paged list (following next links), get, update.
	var all []images.Image
	err = images.List(dfwImg, images.ListOpts{Limit: 2}).
		EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			imgs, err := images.ExtractImages(p)
			all = append(all, imgs...)
			return true, err
		})
	if err != nil || len(all) != 6 {
		t.Fatalf("list: %d images, %v", len(all), err)
	}
	var web images.Image
	for _, i := range all {
		if i.Name == "demo-web-01" {
			web = i
		}
	}
	if web.SizeBytes != 64<<20 || web.Properties["app"] != "web" || web.Owner != "100001" || len(web.Checksum) != 32 {
		t.Fatalf("demo-web-01 as gophercloud sees it: %+v", web)
	}
	upd, err := images.Update(ctx, dfwImg, web.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "web-01"},
		images.UpdateImageProperty{Op: images.AddOp, Name: "migrated_by", Value: "imageflow"},
	}).Extract()
	if err != nil || upd.Name != "web-01" || upd.Properties["migrated_by"] != "imageflow" {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if _, err := images.Get(ctx, partnerImg, web.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("partner get before share: %v", err)
	}

	// Members: producer adds, consumer accepts, both read, producer deletes.
	if m, err := members.Create(ctx, dfwImg, web.ID, "100002").Extract(); err != nil || m.Status != "pending" {
		t.Fatalf("add member: %+v %v", m, err)
	}
	if m, err := members.Update(ctx, partnerImg, web.ID, "100002", members.UpdateOpts{Status: "accepted"}).Extract(); err != nil ||
		m.Status != "accepted" {
		t.Fatalf("accept: %+v %v", m, err)
	}
	pages, err := members.List(dfwImg, web.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := members.ExtractMembers(pages)
	if len(ms) != 1 || ms[0].Status != "accepted" {
		t.Fatalf("members %+v", ms)
	}
	if err := members.Delete(ctx, dfwImg, web.ID, "100002").ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Tasks and objects: export, then read the DLO through gophercloud.
	if _, err := containers.Create(ctx, dfwObj, "exports", nil).Extract(); err != nil {
		t.Fatal(err)
	}
	tk, err := tasks.Create(ctx, dfwImg, tasks.CreateOpts{Type: "export", Input: map[string]any{
		"image_uuid": web.ID, "receiving_swift_container": "exports"}}).Extract()
	if err != nil || tk.Status != "pending" {
		t.Fatalf("create task %+v %v", tk, err)
	}
	for tk.Status != "success" && tk.Status != "failure" {
		time.Sleep(20 * time.Millisecond)
		if tk, err = tasks.Get(ctx, dfwImg, tk.ID).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	if tk.Status != "success" || tk.Result["export_location"] != "exports/"+web.ID+".vhd" {
		t.Fatalf("export task %+v", tk)
	}
	dl := objects.Download(ctx, dfwObj, "exports", web.ID+".vhd", nil)
	h := md5.New()
	n, err := io.Copy(h, dl.Body)
	dl.Body.Close()
	if err != nil || n != 64<<20 || hex.EncodeToString(h.Sum(nil)) != web.Checksum {
		t.Fatalf("download export: %d bytes, %v", n, err)
	}

	// Objects: create with a streamed body and an ETag (so gophercloud does not buffer), list.
	data := bytes.Repeat([]byte("imageflow"), 1000)
	sum := md5.Sum(data)
	if _, err := objects.Create(ctx, dfwObj, "exports", "note.txt", objects.CreateOpts{
		Content: bytes.NewReader(data), ETag: hex.EncodeToString(sum[:])}).Extract(); err != nil {
		t.Fatal(err)
	}
	_, err = objects.Create(ctx, dfwObj, "exports", "bad.txt", objects.CreateOpts{Content: bytes.NewReader(data), ETag: "00000000000000000000000000000000"}).
		Extract()
	if !gophercloud.ResponseCodeIs(err, 422) {
		t.Fatalf("wrong ETag: %v", err)
	}
	op, err := objects.List(dfwObj, "exports", objects.ListOpts{Prefix: "note"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := objects.ExtractInfo(op)
	if err != nil || len(infos) != 1 || infos[0].Hash != hex.EncodeToString(sum[:]) ||
		infos[0].Bytes != int64(len(data)) {
		t.Fatalf("object list %+v %v", infos, err)
	}

	// Re-auth: gophercloud gets a 401 after every token expires and logs in again by itself.
	e.ExpireTokens()
	if _, err := images.Get(ctx, dfwImg, web.ID).Extract(); err != nil {
		t.Fatalf("get after tokens expired: %v", err)
	}
}
