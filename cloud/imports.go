package cloud

import (
	"context"
	"fmt"
	"slices"

	"github.com/gophercloud/gophercloud/v2"
)

// Glance's interoperable import methods (GET /v2/info/import). glance-download (Zed and later)
// makes a region's Glance pull an image from another region of the same Keystone itself, with
// the caller's token: no byte passes through the client.
const MethodGlanceDownload = "glance-download"

// ImportMethods lists the import methods region's Glance offers; none when it has no such
// endpoint (Rackspace's). The answer is kept for the client's life.
func (c *Client) ImportMethods(ctx context.Context, region string) ([]string, error) {
	c.mu.Lock()
	known, ok := c.importMethods[region]
	c.mu.Unlock()
	if ok {
		return known, nil
	}
	sc, err := c.Images(region)
	if err != nil {
		return nil, err
	}
	var body struct {
		Methods struct {
			Value []string `json:"value"`
		} `json:"import-methods"`
	}
	_, err = sc.Get(ctx, sc.ServiceURL("info", "import"), &body, &gophercloud.RequestOpts{OkCodes: []int{200}})
	err = classify("list the import methods of "+region, err)
	switch KindOf(err) {
	case "":
		if err != nil {
			return nil, err
		}
	case NotFound, Forbidden, Invalid:
		body.Methods.Value = nil // no interoperable import here
	default:
		return nil, err
	}
	c.mu.Lock()
	c.importMethods[region] = body.Methods.Value
	c.mu.Unlock()
	return body.Methods.Value, nil
}

// Offers says whether region's Glance offers the import method.
func (c *Client) Offers(ctx context.Context, region, method string) (bool, error) {
	ms, err := c.ImportMethods(ctx, region)
	return slices.Contains(ms, method), err
}

// GlanceDownload asks region's Glance to pull image srcID of srcRegion into the queued image id.
// The import runs in Glance; the image turns active (or back to queued, on failure) later.
func (c *Client) GlanceDownload(ctx context.Context, region, id, srcRegion, srcID string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	body := map[string]any{"method": map[string]any{"name": MethodGlanceDownload, "glance_image_id": srcID,
		"glance_region": srcRegion, "glance_service_interface": "public"}}
	_, err = sc.Post(ctx, sc.ServiceURL("images", id, "import"), body, nil,
		&gophercloud.RequestOpts{OkCodes: []int{202}})
	return classify(fmt.Sprintf("glance-download %s from %s into %s in %s", srcID, srcRegion, id, region), err)
}
