package cloud

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"time"

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

// MethodWebDownload is Glance's import from a URL the region fetches itself.
const MethodWebDownload = "web-download"

// WebDownload asks region's Glance to fetch uri into the queued image id.
func (c *Client) WebDownload(ctx context.Context, region, id, uri string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	body := map[string]any{"method": map[string]any{"name": MethodWebDownload, "uri": uri}}
	_, err = sc.Post(ctx, sc.ServiceURL("images", id, "import"), body, nil,
		&gophercloud.RequestOpts{OkCodes: []int{202}})
	return classify(fmt.Sprintf("web-download into %s in %s", id, region), err)
}

// tempURLKey is the account metadata Swift's tempurl middleware signs with.
const tempURLKey = "X-Account-Meta-Temp-Url-Key"

// TempURL is a URL anyone may GET ref's object (manifests followed) with until ttl passes, signed
// with the account's temporary-URL key in ref's region: the account's own key when it has one,
// else a new random one set for it.
func (c *Client) TempURL(ctx context.Context, ref ObjectRef, ttl time.Duration) (string, error) {
	sc, err := c.Files(ref.Region)
	if err != nil {
		return "", err
	}
	key, err := c.ensureTempURLKey(ctx, sc, ref.Region)
	if err != nil {
		return "", err
	}
	raw := objectURL(sc, ref.Container, ref.Object)
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("temporary URL of %s: %w", ref, err)
	}
	expires := time.Now().Add(ttl).Unix()
	mac := hmac.New(sha1.New, []byte(key))
	fmt.Fprintf(mac, "GET\n%d\n%s", expires, u.Path) // Swift signs the decoded path
	return fmt.Sprintf("%s?temp_url_sig=%s&temp_url_expires=%d", raw, hex.EncodeToString(mac.Sum(nil)), expires), nil
}

func (c *Client) ensureTempURLKey(ctx context.Context, sc *gophercloud.ServiceClient, region string) (string, error) {
	resp, err := sc.Head(ctx, sc.ServiceURL(), &gophercloud.RequestOpts{OkCodes: []int{200, 204}})
	if err != nil {
		return "", classify("read the account's metadata in "+region, err)
	}
	if key := resp.Header.Get(tempURLKey); key != "" {
		return key, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b)
	_, err = sc.Post(ctx, sc.ServiceURL(), nil, nil, &gophercloud.RequestOpts{OkCodes: []int{204},
		MoreHeaders: map[string]string{tempURLKey: key}})
	if err != nil {
		return "", classify("set a temporary-URL key for the account in "+region, err)
	}
	return key, nil
}
