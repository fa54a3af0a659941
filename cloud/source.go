package cloud

import (
	"context"
	"fmt"
	"io"
)

// A copy's source is an object in Cloud Files (an export), or, in a region without an object
// store, a Glance image's data (ObjectRef.Image): read by ranges from GET /v2/images/{id}/file,
// which answers Range requests as Swift does.

// SourceInfo is the source's size and MD5 (an object's ETag, or the image's checksum), and its
// segments where they are known.
func (c *Client) SourceInfo(ctx context.Context, src ObjectRef) (ObjectInfo, []Segment, error) {
	if src.Image == "" {
		info, err := c.HeadObject(ctx, src.Region, src.Container, src.Object)
		if err != nil {
			return info, nil, err
		}
		segs, err := c.Segments(ctx, src.Region, src.Container, info)
		return info, segs, err
	}
	img, err := c.GetImage(ctx, src.Region, src.Image)
	if err != nil {
		return ObjectInfo{}, nil, err
	}
	if img.Status != "active" || img.Size == 0 {
		return ObjectInfo{}, nil, &Error{Kind: Invalid, Op: "read image " + src.Image,
			Message: fmt.Sprintf("image %s in %s is %s with %d bytes; only an active image's data can be read",
				src.Image, src.Region, img.Status, img.Size)}
	}
	info := ObjectInfo{Name: src.Image, Size: img.Size, ETag: img.Checksum}
	return info, []Segment{{Name: src.Image, Size: img.Size, ETag: img.Checksum}}, nil
}

// OpenSource streams n bytes of the source from off.
func (c *Client) OpenSource(ctx context.Context, src ObjectRef, off, n int64) (io.ReadCloser, error) {
	if src.Image == "" {
		return c.OpenRange(ctx, src.Region, src.Container, src.Object, off, n)
	}
	op := fmt.Sprintf("read image %s bytes %d-%d in %s", src.Image, off, off+n-1, src.Region)
	sc, err := c.Images(src.Region)
	if err != nil {
		return nil, err
	}
	resp, err := c.stream(ctx, op, "GET", sc.ServiceURL("images", src.Image, "file"), nil, 0,
		map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)}, 206, 200)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == 200 && (off != 0 || resp.ContentLength != n) {
		resp.Body.Close() // a Glance that ignores Range would send the whole image
		return nil, &Error{Kind: Invalid, Op: op, Message: "the image service does not serve byte ranges"}
	}
	return resp.Body, nil
}
