package cloud

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Image is the part of a Cloud Images image imageflow works with.
type Image struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Status     string            `json:"status"`
	Visibility string            `json:"visibility"`
	Owner      string            `json:"owner"`
	Checksum   string            `json:"checksum"`
	Size       int64             `json:"size"`
	Protected  bool              `json:"protected"`
	Tags       []string          `json:"tags"`
	Properties map[string]string `json:"properties"`
	CreatedAt  time.Time         `json:"created_at"`
	// DiskFormat (vhd, qcow2, raw, ...) and ContainerFormat (bare, ovf, ...) say how a
	// hypervisor reads the bytes; a copy must carry them, or Nova boots it as something else.
	DiskFormat      string `json:"disk_format,omitempty"`
	ContainerFormat string `json:"container_format,omitempty"`
	// MinDisk (GB) and MinRAM (MB) are what a server booted from the image needs.
	MinDisk int `json:"min_disk,omitempty"`
	MinRAM  int `json:"min_ram,omitempty"`
}

// Type is the image_type property: base, snapshot or import.
func (i Image) Type() string { return i.Properties["image_type"] }

// LicenceRestricted reports whether Rackspace forbids exporting the image.
func (i Image) LicenceRestricted() bool {
	o, ok := i.Properties["com.rackspace__1__options"]
	return ok && o != "0"
}

func fromImage(g *images.Image) Image {
	props := make(map[string]string, len(g.Properties))
	for k, v := range g.Properties {
		switch s := v.(type) {
		case string:
			props[k] = s
		case nil:
		default:
			props[k] = fmt.Sprint(s)
		}
	}
	return Image{ID: g.ID, Name: g.Name, Status: string(g.Status), Visibility: string(g.Visibility),
		Owner: g.Owner, Checksum: g.Checksum, Size: g.SizeBytes, Protected: g.Protected,
		Tags: append([]string{}, g.Tags...), Properties: props, CreatedAt: g.CreatedAt,
		DiskFormat: g.DiskFormat, ContainerFormat: g.ContainerFormat, MinDisk: g.MinDiskGigabytes,
		MinRAM: g.MinRAMMegabytes}
}

// GetImage returns an image visible to the account in region.
func (c *Client) GetImage(ctx context.Context, region, id string) (Image, error) {
	op := fmt.Sprintf("get image %s in %s", id, region)
	sc, err := c.Images(region)
	if err != nil {
		return Image{}, err
	}
	g, err := images.Get(ctx, sc, id).Extract()
	if err != nil {
		return Image{}, classify(op, err)
	}
	return fromImage(g), nil
}

// ImageFilter selects images in a listing; empty fields do not filter.
type ImageFilter struct {
	Name         string            `json:"name,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	Status       string            `json:"status,omitempty"`
	Visibility   string            `json:"visibility,omitempty"`
	MemberStatus string            `json:"member_status,omitempty"`
	Tags         []string          `json:"tags,omitempty"`
	Properties   map[string]string `json:"properties,omitempty"` // exact-match property filters
	// CreatedBefore and CreatedAfter bound created_at (Glance's lt: and gt: filters).
	CreatedBefore time.Time `json:"created_before,omitzero"`
	CreatedAfter  time.Time `json:"created_after,omitzero"`
	// NamePattern is a shell pattern (path.Match) the name must match. Glance cannot filter by
	// pattern, so the client applies it to the listing.
	NamePattern string `json:"name_pattern,omitempty"`
	Limit       int    `json:"limit,omitempty"` // page size (default 100)
}

// keep applies the filters the server cannot.
func (f ImageFilter) keep(img Image) bool {
	if f.NamePattern == "" {
		return true
	}
	ok, err := path.Match(f.NamePattern, img.Name)
	return ok && err == nil
}

// ToImageListQuery lets the filter pass property filters gophercloud's ListOpts cannot express.
func (f ImageFilter) ToImageListQuery() (string, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("name", f.Name)
	set("owner", f.Owner)
	set("status", f.Status)
	set("visibility", f.Visibility)
	set("member_status", f.MemberStatus)
	for _, t := range f.Tags {
		q.Add("tag", t)
	}
	if !f.CreatedBefore.IsZero() {
		q.Add("created_at", "lt:"+f.CreatedBefore.UTC().Format(time.RFC3339))
	}
	if !f.CreatedAfter.IsZero() {
		q.Add("created_at", "gt:"+f.CreatedAfter.UTC().Format(time.RFC3339))
	}
	keys := make([]string, 0, len(f.Properties))
	for k := range f.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set(k, f.Properties[k])
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("sort_key", "created_at")
	q.Set("sort_dir", "asc")
	return "?" + q.Encode(), nil
}

// ListImages follows every page of a filtered listing.
func (c *Client) ListImages(ctx context.Context, region string, f ImageFilter) ([]Image, error) {
	op := "list images in " + region
	sc, err := c.Images(region)
	if err != nil {
		return nil, err
	}
	var out []Image
	err = images.List(sc, f).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		imgs, err := images.ExtractImages(p)
		for i := range imgs {
			if img := fromImage(&imgs[i]); f.keep(img) {
				out = append(out, img)
			}
		}
		return true, err
	})
	return out, classify(op, err)
}

// PatchOp is one change to an image, applied as a JSON-patch operation.
type PatchOp struct {
	Op    string `json:"op"` // add, replace, remove
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

type patchDoc []PatchOp

func (p patchDoc) ToImageUpdateMap() ([]any, error) {
	out := make([]any, len(p))
	for i, op := range p {
		m := map[string]any{"op": op.Op, "path": op.Path}
		if op.Op != "remove" {
			m["value"] = op.Value
		}
		out[i] = m
	}
	return out, nil
}

// PatchImage applies JSON-patch operations to an image the account owns.
func (c *Client) PatchImage(ctx context.Context, region, id string, ops []PatchOp) (Image, error) {
	op := fmt.Sprintf("update image %s in %s", id, region)
	sc, err := c.Images(region)
	if err != nil {
		return Image{}, err
	}
	g, err := images.Update(ctx, sc, id, patchDoc(ops)).Extract()
	if err != nil {
		return Image{}, classify(op, err)
	}
	return fromImage(g), nil
}

// PropertyPath escapes a property name for a JSON-patch path.
func PropertyPath(name string) string {
	out := make([]byte, 0, len(name)+1)
	out = append(out, '/')
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, name[i])
		}
	}
	return string(out)
}

// DeleteImage deletes an image the account owns.
func (c *Client) DeleteImage(ctx context.Context, region, id string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	return classify(fmt.Sprintf("delete image %s in %s", id, region), images.Delete(ctx, sc, id).ExtractErr())
}

// AddTag tags an image; tagging twice is harmless.
func (c *Client) AddTag(ctx context.Context, region, id, tag string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	_, err = sc.Put(
		ctx,
		sc.ServiceURL("images", id, "tags", url.PathEscape(tag)),
		nil,
		nil,
		&gophercloud.RequestOpts{OkCodes: []int{204}},
	)
	return classify(fmt.Sprintf("tag image %s in %s", id, region), err)
}

// DeleteTag removes a tag from an image; a tag the image lacks is a NotFound error.
func (c *Client) DeleteTag(ctx context.Context, region, id, tag string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	_, err = sc.Delete(ctx, sc.ServiceURL("images", id, "tags", url.PathEscape(tag)),
		&gophercloud.RequestOpts{OkCodes: []int{204}})
	return classify(fmt.Sprintf("remove tag %q from image %s in %s", tag, id, region), err)
}

// NewImage describes an image to create: what a copy carries over from its source.
type NewImage struct {
	Name string `json:"name"`
	// DiskFormat and ContainerFormat default to vhd and bare (what Rackspace exports).
	DiskFormat      string `json:"disk_format,omitempty"`
	ContainerFormat string `json:"container_format,omitempty"`
	MinDisk         int    `json:"min_disk,omitempty"`
	MinRAM          int    `json:"min_ram,omitempty"`
	// Visibility is private, shared or community ("": the cloud's default).
	Visibility string            `json:"visibility,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

// CreateImage makes a queued image to upload data into (a generic Glance; Rackspace refuses).
// Properties are set at creation, so a retry can find an image it made.
func (c *Client) CreateImage(ctx context.Context, region string, n NewImage) (Image, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Image{}, err
	}
	opts := images.CreateOpts{Name: n.Name, DiskFormat: orElse(n.DiskFormat, "vhd"),
		ContainerFormat: orElse(n.ContainerFormat, "bare"), MinDisk: n.MinDisk, MinRAM: n.MinRAM,
		Properties: n.Properties}
	if n.Visibility != "" {
		v := images.ImageVisibility(n.Visibility)
		opts.Visibility = &v
	}
	img, err := images.Create(ctx, sc, opts).Extract()
	if err != nil {
		return Image{}, classify(fmt.Sprintf("create image %q in %s", n.Name, region), err)
	}
	return fromImage(img), nil
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// UploadImageData streams size bytes into a queued image; Glance hashes them and makes the
// image active. An upload cannot resume: a failed one is restarted from the first byte.
// A stream that moves no byte for the idle timeout is cut (an Unavailable error: start again).
func (c *Client) UploadImageData(ctx context.Context, region, id string, body io.Reader, size int64) (err error) {
	op := fmt.Sprintf("upload image %s in %s", id, region)
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	gctx, guard := guardIdle(ctx, c.idleTimeout)
	defer func() { err = guard.release(gctx, op, err) }()
	resp, err := c.stream(gctx, op, "PUT", sc.ServiceURL("images", id, "file"), guard.reader(body), size,
		map[string]string{"Content-Type": "application/octet-stream"}, 204)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
