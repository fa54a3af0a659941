package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// ObjectInfo describes a stored object. For a manifest, Size and ETag are the whole large
// object's (Swift's quoted MD5 of the segment ETags).
type ObjectInfo struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	ETag     string `json:"etag"`
	Manifest string `json:"manifest,omitempty"` // DLO "<container>/<prefix>"
	SLO      bool   `json:"slo,omitempty"`
}

// Segment is one piece of a large object, in order.
type Segment struct {
	Container string `json:"container"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	ETag      string `json:"etag"`
}

// EnsureContainer creates a container if it does not exist.
func (c *Client) EnsureContainer(ctx context.Context, region, name string) error {
	sc, err := c.Files(region)
	if err != nil {
		return err
	}
	_, err = containers.Create(ctx, sc, name, nil).Extract()
	return classify(fmt.Sprintf("create container %s in %s", name, region), err)
}

// DeleteContainerIfEmpty removes a container that holds nothing. A container that still holds
// objects (Swift's 409) or is already gone is left as it is, without error: the caller may share
// it with others, and only an empty one is its to remove.
func (c *Client) DeleteContainerIfEmpty(ctx context.Context, region, name string) (bool, error) {
	sc, err := c.Files(region)
	if err != nil {
		return false, err
	}
	_, err = containers.Delete(ctx, sc, name).Extract()
	err = classify(fmt.Sprintf("delete container %s in %s", name, region), err)
	switch KindOf(err) {
	case "":
		return err == nil, err
	case NotFound, Conflict:
		return false, nil
	}
	return false, err
}

func objectURL(sc *gophercloud.ServiceClient, container, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return sc.ServiceURL(url.PathEscape(container), strings.Join(parts, "/"))
}

// HeadObject reads an object's size, ETag and manifest headers.
func (c *Client) HeadObject(ctx context.Context, region, container, name string) (ObjectInfo, error) {
	op := fmt.Sprintf("read object %s/%s in %s", container, name, region)
	sc, err := c.Files(region)
	if err != nil {
		return ObjectInfo{}, err
	}
	resp, err := sc.Head(ctx, objectURL(sc, container, name), &gophercloud.RequestOpts{OkCodes: []int{200, 204}})
	if err != nil {
		return ObjectInfo{}, classify(op, err)
	}
	size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	return ObjectInfo{Name: name, Size: size, ETag: strings.Trim(resp.Header.Get("ETag"), `"`),
		Manifest: resp.Header.Get(
			"X-Object-Manifest",
		), SLO: strings.EqualFold(resp.Header.Get("X-Static-Large-Object"), "true")}, nil
}

// ListObjects lists every object whose name starts with prefix.
func (c *Client) ListObjects(ctx context.Context, region, container, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := c.listPages(ctx, region, container, prefix, func(page []ObjectInfo) error {
		out = append(out, page...)
		return nil
	})
	return out, err
}

// listPages lists the objects under prefix a page (Swift's, up to 10,000 objects) at a time, so a
// caller that acts per page never holds the whole listing: a lineage container at 160 GB holds
// 38,147 objects a generation.
func (c *Client) listPages(ctx context.Context, region, container, prefix string, each func([]ObjectInfo) error) error {
	op := fmt.Sprintf("list %s/%s* in %s", container, prefix, region)
	sc, err := c.Files(region)
	if err != nil {
		return err
	}
	var failed error // each's own error, returned as it is, not classified as the listing's
	err = objects.List(sc, container, objects.ListOpts{Prefix: prefix, Limit: c.pageLimit}).
		EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			infos, err := objects.ExtractInfo(p)
			if err != nil {
				return false, err
			}
			page := make([]ObjectInfo, len(infos))
			for i, o := range infos {
				page[i] = ObjectInfo{Name: o.Name, Size: o.Bytes, ETag: o.Hash}
			}
			failed = each(page)
			return failed == nil, nil
		})
	if failed != nil {
		return failed
	}
	return classify(op, err)
}

// Segments returns a large object's segments in order, or the object itself when it is plain.
func (c *Client) Segments(ctx context.Context, region, container string, info ObjectInfo) ([]Segment, error) {
	switch {
	case info.Manifest != "":
		segC, prefix, _ := strings.Cut(info.Manifest, "/")
		objs, err := c.ListObjects(ctx, region, segC, prefix)
		if err != nil {
			return nil, err
		}
		segs := make([]Segment, len(objs))
		for i, o := range objs {
			segs[i] = Segment{Container: segC, Name: o.Name, Size: o.Size, ETag: o.ETag}
		}
		return segs, nil
	case info.SLO:
		return c.sloSegments(ctx, region, container, info.Name)
	}
	return []Segment{{Container: container, Name: info.Name, Size: info.Size, ETag: info.ETag}}, nil
}

func (c *Client) sloSegments(ctx context.Context, region, container, name string) ([]Segment, error) {
	op := fmt.Sprintf("read manifest %s/%s in %s", container, name, region)
	sc, err := c.Files(region)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Name   string `json:"name"`
		Hash   string `json:"hash"`
		Bytes  int64  `json:"bytes"`
		SubSLO bool   `json:"sub_slo"`
	}
	_, err = sc.Get(ctx, objectURL(sc, container, name)+"?multipart-manifest=get", &rows, nil)
	if err != nil {
		return nil, classify(op, err)
	}
	segs := make([]Segment, len(rows))
	for i, r := range rows {
		sc, so, _ := strings.Cut(strings.TrimPrefix(r.Name, "/"), "/")
		segs[i] = Segment{Container: sc, Name: so, Size: r.Bytes, ETag: r.Hash}
		if r.SubSLO {
			// A nested manifest's hash is the MD5 of its segments' ETags, not of its bytes: a
			// piece that is the whole of it has no known MD5.
			segs[i].ETag = ""
		}
	}
	return segs, nil
}

// stream sends a request whose body is streamed (or whose answer is), outside gophercloud so
// nothing is buffered. On 401 it re-authenticates; a request without a body is then retried, one
// with a body returns the Unauthorized error so the caller can restart its stream.
func (c *Client) stream(
	ctx context.Context,
	op, method, u string,
	body io.Reader,
	size int64,
	hdr map[string]string,
	ok ...int,
) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if body != nil {
			req.ContentLength = size
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		tok := c.provider.Token()
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("User-Agent", "imageflow")
		resp, err := c.httpClient.Do(req)
		if err != nil {
			return nil, classify(op, err)
		}
		for _, code := range ok {
			if resp.StatusCode == code {
				return resp, nil
			}
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cerr := fromResponse(op, resp.StatusCode, resp.Header, b, nil)
		if resp.StatusCode != 401 || attempt > 0 {
			return nil, cerr
		}
		if err := c.provider.Reauthenticate(ctx, tok); err != nil {
			return nil, classify(op, &gophercloud.ErrUnableToReauthenticate{ErrOriginal: err})
		}
		if body != nil {
			return nil, cerr // re-authenticated; the caller restarts the stream with the new token
		}
	}
}

// OpenRange streams n bytes of an object (a large object reads as its concatenation) from off.
func (c *Client) OpenRange(ctx context.Context, region, container, name string, off, n int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("read %s/%s bytes %d-%d in %s", container, name, off, off+n-1, region)
	sc, err := c.Files(region)
	if err != nil {
		return nil, err
	}
	resp, err := c.stream(ctx, op, "GET", objectURL(sc, container, name), nil, 0,
		map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)}, 206, 200)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// PutStream uploads size bytes from body as one object without buffering them, and returns the
// ETag the store computed. With wantETag set, the store rejects bytes that do not match it.
func (c *Client) PutStream(
	ctx context.Context,
	region, container, name string,
	body io.Reader,
	size int64,
	wantETag string,
) (string, error) {
	op := fmt.Sprintf("write %s/%s in %s", container, name, region)
	sc, err := c.Files(region)
	if err != nil {
		return "", err
	}
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	if wantETag != "" {
		hdr["ETag"] = wantETag
	}
	resp, err := c.stream(ctx, op, "PUT", objectURL(sc, container, name), body, size, hdr, 201)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// PutSLO writes a static large object manifest over segments (at most 1000, each but the last
// at least 1 MiB). It returns the manifest's ETag (MD5 of the concatenated segment ETags).
func (c *Client) PutSLO(ctx context.Context, region, container, name string, segs []Segment) (string, error) {
	op := fmt.Sprintf("write manifest %s/%s in %s", container, name, region)
	sc, err := c.Files(region)
	if err != nil {
		return "", err
	}
	rows := make([]map[string]any, len(segs))
	for i, s := range segs {
		rows[i] = map[string]any{"path": "/" + s.Container + "/" + s.Name, "etag": s.ETag, "size_bytes": s.Size}
	}
	b, _ := json.Marshal(rows)
	resp, err := sc.Put(
		ctx,
		objectURL(sc, container, name)+"?multipart-manifest=put",
		bytes.NewReader(b),
		nil,
		&gophercloud.RequestOpts{
			OkCodes:     []int{201},
			MoreHeaders: map[string]string{"Content-Type": "application/json"},
		},
	)
	if err != nil {
		return "", classify(op, err)
	}
	return strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// DeleteObject deletes one object; a missing object is not an error.
func (c *Client) DeleteObject(ctx context.Context, region, container, name string) error {
	sc, err := c.Files(region)
	if err != nil {
		return err
	}
	_, err = objects.Delete(ctx, sc, container, name, nil).Extract()
	if IsNotFound(classify("", err)) {
		return nil
	}
	return classify(fmt.Sprintf("delete %s/%s in %s", container, name, region), err)
}

// DeleteObjects removes objects with bulk delete, 1000 per request; it returns how many were deleted.
func (c *Client) DeleteObjects(ctx context.Context, region, container string, names []string) (int, error) {
	op := fmt.Sprintf("delete %d objects from %s in %s", len(names), container, region)
	sc, err := c.Files(region)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for len(names) > 0 {
		n := min(len(names), 1000)
		res, err := objects.BulkDelete(ctx, sc, container, names[:n]).Extract()
		if err != nil {
			return deleted, classify(op, err)
		}
		deleted += res.NumberDeleted
		if len(res.Errors) > 0 {
			return deleted, &Error{
				Kind:    Conflict,
				Op:      op,
				Message: fmt.Sprintf("%d objects could not be deleted, first: %v", len(res.Errors), res.Errors[0]),
			}
		}
		names = names[n:]
	}
	return deleted, nil
}

// ContainerInfo is a container and what it holds.
type ContainerInfo struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	Bytes int64  `json:"bytes"`
}

// ListContainers lists the account's containers in region.
func (c *Client) ListContainers(ctx context.Context, region string) ([]ContainerInfo, error) {
	op := "list containers in " + region
	sc, err := c.Files(region)
	if err != nil {
		return nil, err
	}
	pages, err := containers.List(sc, containers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, classify(op, err)
	}
	infos, err := containers.ExtractInfo(pages)
	if err != nil {
		return nil, classify(op, err)
	}
	out := make([]ContainerInfo, len(infos))
	for i, in := range infos {
		out[i] = ContainerInfo{Name: in.Name, Count: in.Count, Bytes: in.Bytes}
	}
	return out, nil
}
