// Package cloud is imageflow's client for Rackspace Cloud Images and Cloud Files, built on
// gophercloud v2: Rackspace API-key or password auth against Identity v2.0, one token per account
// shared by every caller and renewed on 401, per-region service clients from the catalog, typed
// errors, pacing that honours Retry-After, and streaming large-object helpers.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	tokens2 "github.com/gophercloud/gophercloud/v2/openstack/identity/v2/tokens"
)

// Credentials name an account. Exactly one of APIKey and Password is used (APIKey first).
// They stay inside the client: nothing here logs or returns them.
type Credentials struct {
	IdentityURL string // e.g. https://identity.api.rackspacecloud.com/v2.0/
	Username    string
	APIKey      string
	Password    string
}

// String hides the secrets, so a Credentials value printed by mistake leaks nothing.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{IdentityURL: %s, Username: %s, secret: [redacted]}", c.IdentityURL, c.Username)
}

// GoString hides the secrets from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Options tune a client; the zero value is usable.
type Options struct {
	Pacing  Pacing
	Timeout time.Duration // per request, excluding streamed bodies (default 60s)
	// Transport replaces http.DefaultTransport underneath the pacing (tests, proxies).
	Transport http.RoundTripper
}

// Client is one account's session with the cloud. It is safe for concurrent use.
type Client struct {
	provider      *gophercloud.ProviderClient
	tenant        string
	defaultRegion string
	httpClient    *http.Client // for streamed bodies: no overall timeout

	mu     sync.Mutex
	images map[string]*gophercloud.ServiceClient
	files  map[string]*gophercloud.ServiceClient
}

// apiKeyAuth is Rackspace's RAX-KSKEY credential, which gophercloud does not know.
type apiKeyAuth struct {
	username, apiKey string
}

func (a apiKeyAuth) ToTokenV2CreateMap() (map[string]any, error) {
	return map[string]any{"auth": map[string]any{"RAX-KSKEY:apiKeyCredentials": map[string]any{
		"username": a.username, "apiKey": a.apiKey}}}, nil
}

func (a apiKeyAuth) CanReauth() bool { return true }

// New authenticates and returns a client; it fails with a clear message on bad credentials.
func New(ctx context.Context, creds Credentials, opts Options) (*Client, error) {
	if creds.IdentityURL == "" || creds.Username == "" || (creds.APIKey == "" && creds.Password == "") {
		return nil, errors.New("cloud credentials need an identity URL, a username and an API key or password")
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	transport := newPacer(base, opts.Pacing)
	provider, err := openstack.NewClient(identityEndpoint(creds.IdentityURL))
	if err != nil {
		return nil, fmt.Errorf("identity URL %q: %w", creds.IdentityURL, err)
	}
	provider.HTTPClient = http.Client{Transport: transport, Timeout: opts.Timeout}
	provider.UserAgent.Prepend("imageflow")
	var builder tokens2.AuthOptionsBuilder = apiKeyAuth{creds.Username, creds.APIKey}
	if creds.APIKey == "" {
		builder = tokens2.AuthOptions{Username: creds.Username, Password: creds.Password, AllowReauth: true}
	}
	if err := openstack.AuthenticateV2(ctx, provider, builder, gophercloud.EndpointOpts{}); err != nil {
		ce := classify("authenticate "+creds.Username+" at "+creds.IdentityURL, err)
		if KindOf(ce) == Unauthorized || KindOf(ce) == Invalid {
			return nil, fmt.Errorf(
				"authenticate %s at %s: the identity service rejected the credentials (check the username and API key or password): %w",
				creds.Username,
				creds.IdentityURL,
				ce,
			)
		}
		return nil, ce
	}
	c := &Client{provider: provider, httpClient: &http.Client{Transport: transport},
		images: map[string]*gophercloud.ServiceClient{}, files: map[string]*gophercloud.ServiceClient{}}
	if err := c.readAccount(); err != nil {
		return nil, err
	}
	return c, nil
}

func identityEndpoint(u string) string {
	u = strings.TrimRight(u, "/")
	if !strings.HasSuffix(u, "/v2.0") {
		u += "/v2.0"
	}
	return u + "/"
}

func (c *Client) readAccount() error {
	res, ok := c.provider.GetAuthResult().(tokens2.CreateResult)
	if !ok {
		return errors.New("identity answered without a token")
	}
	var body struct {
		Access struct {
			Token struct {
				Tenant struct{ ID string } `json:"tenant"`
			} `json:"token"`
			User struct {
				DefaultRegion string `json:"RAX-AUTH:defaultRegion"`
			} `json:"user"`
		} `json:"access"`
	}
	if err := res.ExtractInto(&body); err != nil {
		return fmt.Errorf("read identity answer: %w", err)
	}
	c.tenant, c.defaultRegion = body.Access.Token.Tenant.ID, body.Access.User.DefaultRegion
	if c.tenant == "" {
		return errors.New("identity answer has no tenant id")
	}
	return nil
}

// Tenant is the account number the client acts as.
func (c *Client) Tenant() string { return c.tenant }

// DefaultRegion is the account's default region from the identity answer.
func (c *Client) DefaultRegion() string { return c.defaultRegion }

// Images returns the region's Cloud Images client, from the catalog.
func (c *Client) Images(region string) (*gophercloud.ServiceClient, error) {
	return c.service(c.images, region, func(eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
		sc, err := openstack.NewImageV2(c.provider, eo)
		if err == nil {
			// The Rackspace catalog URL already ends in /v2; gophercloud would append another.
			sc.ResourceBase = sc.Endpoint
			if !strings.HasSuffix(strings.TrimRight(sc.Endpoint, "/"), "/v2") {
				sc.ResourceBase = sc.Endpoint + "v2/"
			}
		}
		return sc, err
	})
}

// Files returns the region's Cloud Files client, from the catalog.
func (c *Client) Files(region string) (*gophercloud.ServiceClient, error) {
	return c.service(c.files, region, func(eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
		return openstack.NewObjectStorageV1(c.provider, eo)
	})
}

func (c *Client) service(cache map[string]*gophercloud.ServiceClient, region string,
	build func(gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)) (*gophercloud.ServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc := cache[region]; sc != nil {
		return sc, nil
	}
	sc, err := build(gophercloud.EndpointOpts{Region: region})
	if err != nil {
		return nil, &Error{Kind: NotFound, Op: "find region " + region,
			Message: fmt.Sprintf("region %q is not in account %s's service catalog", region, c.tenant), Err: err}
	}
	cache[region] = sc
	return sc, nil
}
