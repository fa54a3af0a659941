// Package cloud is imageflow's client for Rackspace Cloud Images and Cloud Files and any
// OpenStack cloud's Glance and Swift, built on gophercloud v2: Rackspace API-key or password auth
// against Identity v2.0, or Keystone v3 (password, application credential, token; clouds.yaml),
// one token per account
// shared by every caller and renewed on 401, per-region service clients from the catalog, typed
// errors, pacing that honours Retry-After, and streaming large-object helpers.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	tokens2 "github.com/gophercloud/gophercloud/v2/openstack/identity/v2/tokens"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// Credentials name an account. They stay inside the client: nothing here logs or returns them.
// An IdentityURL ending in /v3 is Keystone v3; any other is Identity v2.0 (Rackspace's).
type Credentials struct {
	// IdentityURL is e.g. https://identity.api.rackspacecloud.com/v2.0/ or https://keystone:5000/v3.
	IdentityURL string
	Username    string
	// APIKey is Rackspace's API key (v2.0); with it, Password is not used.
	APIKey   string
	Password string
	// UserDomainName and ProjectDomainName default to "Default" (v3).
	UserDomainName    string
	ProjectDomainName string
	// ProjectID or ProjectName scopes a v3 token (default: the user's default project).
	ProjectID   string
	ProjectName string
	// ApplicationCredentialID and ApplicationCredentialSecret replace user and password (v3).
	ApplicationCredentialID     string
	ApplicationCredentialSecret string
	// Token is an existing token to authenticate with (v3); it cannot be renewed.
	Token string
	// DefaultRegion (clouds.yaml's region_name) is the region commands use when they name none;
	// without it, Rackspace's identity names one, and Keystone's catalog's first region serves.
	DefaultRegion string
}

// keystoneV3 reports whether the identity URL is a Keystone v3 endpoint.
func (c Credentials) keystoneV3() bool {
	return strings.HasSuffix(strings.TrimRight(c.IdentityURL, "/"), "/v3")
}

// String hides the secrets, so a Credentials value printed by mistake leaks nothing.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{IdentityURL: %s, Username: %s, ProjectID: %s, ProjectName: %s, "+
		"ApplicationCredentialID: %s, secrets: [redacted]}", c.IdentityURL, c.Username, c.ProjectID, c.ProjectName,
		c.ApplicationCredentialID)
}

// GoString hides the secrets from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Options tune a client; the zero value is usable.
type Options struct {
	Pacing  Pacing
	Timeout time.Duration // per request, excluding streamed bodies (default 60s)
	// Transport replaces http.DefaultTransport underneath the pacing (tests, proxies).
	Transport http.RoundTripper
	// IdleTimeout cuts a streamed body (a copy's GET and PUT) that moves no byte for this long
	// (default DefaultIdleTimeout; negative: never).
	IdleTimeout time.Duration
	// Health shares each host's state among the client's users: a host that keeps failing is
	// watched by one probe while requests for it wait (see Health).
	Health Health
}

// Client is one account's session with the cloud. It is safe for concurrent use.
type Client struct {
	provider      *gophercloud.ProviderClient
	tenant        string
	defaultRegion string
	regions       []string      // with an image service, from the catalog, sorted
	stores        []string      // with an object store
	httpClient    *http.Client  // for streamed bodies: no overall timeout
	idleTimeout   time.Duration // for streamed bodies: cut after this long without a byte
	// retryCap is the longest a copy's waiting piece sleeps between tries: the health probe's
	// interval when the client watches hosts, so a piece resumes as soon as a probe would.
	retryCap time.Duration

	mu     sync.Mutex
	images map[string]*gophercloud.ServiceClient
	files  map[string]*gophercloud.ServiceClient
	tasks  map[string]bool // region -> runs import and export tasks (see HasTasks)
	// importMethods is region -> the interoperable import methods its Glance offers.
	importMethods map[string][]string
	// links is the parallelism the last tuned copy between two regions settled on, by link
	// (see linkKey): the next copy over it starts there rather than ramping up again.
	links map[string]int
	// copying counts the copies running: a new one's first transfers are a share of the ceiling
	// (see startingStreams).
	copying atomic.Int32
	// pageLimit, when set, asks for object listings in pages this small: a test's way to walk
	// many pages without the 10,000 objects a cloud's page holds.
	pageLimit int
	// manifestLimit, when set, nests static manifests past this many segments instead of
	// maxManifestSegments: a test's way to nest without a thousand segments.
	manifestLimit int
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
	if err := creds.Check(); err != nil {
		return nil, err
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	switch {
	case opts.IdleTimeout == 0:
		opts.IdleTimeout = DefaultIdleTimeout
	case opts.IdleTimeout < 0:
		opts.IdleTimeout = 0
	}
	health := newGate(newPacer(base, opts.Pacing), opts.Health)
	spans := &traced{next: health}
	transport := http.RoundTripper(spans)
	provider, err := openstack.NewClient(identityEndpoint(creds))
	if err != nil {
		return nil, fmt.Errorf("identity URL %q: %w", creds.IdentityURL, err)
	}
	provider.HTTPClient = http.Client{Transport: transport, Timeout: opts.Timeout}
	provider.UserAgent.Prepend("imageflow")
	if err := authenticate(ctx, provider, creds); err != nil {
		op := "authenticate " + creds.who() + " at " + creds.IdentityURL
		ce := classify(op, err)
		var e *Error
		if errors.As(ce, &e) && (e.Kind == Unauthorized || e.Kind == Invalid) {
			return nil, &Error{Kind: Unauthorized, Status: e.Status, Op: op, Err: e.Err,
				Message: "the identity service rejected the credentials (check the username and API key or " +
					"password): " + e.Message}
		}
		return nil, ce
	}
	c := &Client{provider: provider, httpClient: &http.Client{Transport: transport}, idleTimeout: opts.IdleTimeout,
		retryCap: health.retryCap(),
		images:   map[string]*gophercloud.ServiceClient{}, files: map[string]*gophercloud.ServiceClient{},
		tasks: map[string]bool{}, importMethods: map[string][]string{}}
	if err := c.readAccount(); err != nil {
		return nil, err
	}
	health.setName(c.serviceName)
	spans.name = c.serviceName
	if creds.DefaultRegion != "" {
		if err := c.CheckRegions(creds.DefaultRegion); err != nil {
			return nil, fmt.Errorf("the configured default region (clouds.yaml's region_name): %w", err)
		}
		c.defaultRegion = creds.DefaultRegion
	}
	return c, nil
}

// serviceName names the service a URL belongs to by the catalog's endpoints: "IAD files",
// "DFW images", "identity"; "" for a URL of none the client has used.
func (c *Client) serviceName(u *url.URL) string {
	s := u.String()
	if strings.HasPrefix(s, c.provider.IdentityEndpoint) || strings.HasPrefix(s, c.provider.IdentityBase) {
		return "identity"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, svc := range []struct {
		name    string
		clients map[string]*gophercloud.ServiceClient
	}{{"images", c.images}, {"files", c.files}} {
		for region, sc := range svc.clients {
			if strings.HasPrefix(s, sc.Endpoint) {
				return region + " " + svc.name
			}
		}
	}
	return ""
}

func identityEndpoint(c Credentials) string {
	u := strings.TrimRight(c.IdentityURL, "/")
	if !c.keystoneV3() && !strings.HasSuffix(u, "/v2.0") {
		u += "/v2.0"
	}
	return u + "/"
}

// Check says what a set of credentials lacks, without naming any secret.
func (c Credentials) Check() error {
	switch {
	case c.IdentityURL == "":
		return errors.New("cloud credentials need an identity URL")
	case !c.keystoneV3() && (c.Username == "" || (c.APIKey == "" && c.Password == "")):
		return errors.New("credentials for Identity v2.0 need a username and an API key or password")
	case c.keystoneV3() && c.Token == "" && c.ApplicationCredentialID == "" && (c.Username == "" || c.Password == ""):
		return errors.New("credentials for Keystone v3 need a username and password, an application credential, " +
			"or a token")
	case c.ApplicationCredentialID != "" && c.ApplicationCredentialSecret == "":
		return errors.New("an application credential needs its secret")
	}
	return nil
}

// who names the credentials' user for messages: the username, or the application credential.
func (c Credentials) who() string {
	switch {
	case c.Username != "":
		return c.Username
	case c.ApplicationCredentialID != "":
		return "application credential " + c.ApplicationCredentialID
	}
	return "a token"
}

// authenticate gets the first token: Rackspace's API key or a password over v2.0, or Keystone
// v3's methods.
func authenticate(ctx context.Context, provider *gophercloud.ProviderClient, c Credentials) error {
	if c.keystoneV3() {
		return openstack.AuthenticateV3(ctx, provider, c.v3Options(), gophercloud.EndpointOpts{})
	}
	var builder tokens2.AuthOptionsBuilder = apiKeyAuth{c.Username, c.APIKey}
	if c.APIKey == "" {
		builder = tokens2.AuthOptions{Username: c.Username, Password: c.Password, AllowReauth: true}
	}
	return openstack.AuthenticateV2(ctx, provider, builder, gophercloud.EndpointOpts{})
}

func (c Credentials) v3Options() *gophercloud.AuthOptions {
	domain := func(d string) string {
		if d == "" {
			return "Default"
		}
		return d
	}
	ao := &gophercloud.AuthOptions{IdentityEndpoint: c.IdentityURL, AllowReauth: c.Token == ""}
	switch {
	case c.ApplicationCredentialID != "": // scoped by the credential itself
		ao.ApplicationCredentialID, ao.ApplicationCredentialSecret = c.ApplicationCredentialID,
			c.ApplicationCredentialSecret
		return ao
	case c.Token != "":
		ao.TokenID = c.Token
	default:
		ao.Username, ao.Password, ao.DomainName = c.Username, c.Password, domain(c.UserDomainName)
	}
	if c.ProjectID != "" {
		ao.Scope = &gophercloud.AuthScope{ProjectID: c.ProjectID}
	} else if c.ProjectName != "" {
		ao.Scope = &gophercloud.AuthScope{ProjectName: c.ProjectName, DomainName: domain(c.ProjectDomainName)}
	}
	return ao
}

// readAccount learns the tenant (project), default region and regions from the token.
func (c *Client) readAccount() error {
	if res, ok := c.provider.GetAuthResult().(tokens3.CreateResult); ok {
		return c.readAccountV3(res)
	}
	res, ok := c.provider.GetAuthResult().(tokens2.CreateResult)
	if !ok {
		return errors.New("identity answered without a token")
	}
	if cat, err := res.ExtractServiceCatalog(); err == nil {
		for _, e := range cat.Entries {
			for _, ep := range e.Endpoints {
				c.addService(e.Type, ep.Region)
			}
		}
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
	return c.service(c.images, region, "image service", func(eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient,
		error) {
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
	return c.service(c.files, region, "object-store", func(eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient,
		error) {
		return openstack.NewObjectStorageV1(c.provider, eo)
	})
}

func (c *Client) service(cache map[string]*gophercloud.ServiceClient, region, kind string,
	build func(gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)) (*gophercloud.ServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc := cache[region]; sc != nil {
		return sc, nil
	}
	sc, err := build(gophercloud.EndpointOpts{Region: region})
	if err != nil {
		msg := fmt.Sprintf("region %q is not in account %s's service catalog (it lists %s)", region, c.tenant,
			strings.Join(c.regions, ", "))
		if kind == "object-store" && slices.Contains(c.regions, region) {
			// The region is there, without the service: say what it lacks, not that it is missing.
			msg = fmt.Sprintf("region %q has no object store (Cloud Files or Swift) in account %s's catalog, so "+
				"it has no containers to export to or import from (regions with one: %s); a migration "+
				"uploads into such a region through Glance instead", region, c.tenant, orNone(c.stores))
		}
		return nil, &Error{Kind: NotFound, Op: "find " + kind + " in " + region, Message: msg, Err: err}
	}
	cache[region] = sc
	return sc, nil
}

func (c *Client) readAccountV3(res tokens3.CreateResult) error {
	p, err := res.ExtractProject()
	if err != nil || p == nil || p.ID == "" {
		return errors.New("the Keystone token is not scoped to a project; name one (project id or name)")
	}
	c.tenant = p.ID
	cat, err := res.ExtractServiceCatalog()
	if err != nil {
		return fmt.Errorf("read the Keystone catalog: %w", err)
	}
	for _, e := range cat.Entries {
		for _, ep := range e.Endpoints {
			c.addService(e.Type, ep.Region)
		}
	}
	if len(c.regions) > 0 {
		c.defaultRegion = c.regions[0] // Keystone names no default region
	}
	return nil
}

// addService notes a catalog endpoint: regions are where the image service is, stores where an
// object store is.
func (c *Client) addService(typ, region string) {
	list := map[string]*[]string{"image": &c.regions, "object-store": &c.stores}[typ]
	if list != nil && region != "" && !slices.Contains(*list, region) {
		*list = append(*list, region)
		slices.Sort(*list)
	}
}

// HasObjectStore reports whether the catalog lists an object store in region: Rackspace's tasks
// export to and import from it; without one, images arrive by upload.
func (c *Client) HasObjectStore(region string) bool { return slices.Contains(c.stores, region) }

// Regions are the regions whose image service the account's catalog lists.
func (c *Client) Regions() []string { return slices.Clone(c.regions) }

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// CheckRegions fails, naming the catalog's regions, when one of regions is not among them.
func (c *Client) CheckRegions(regions ...string) error {
	for _, r := range regions {
		if !slices.Contains(c.regions, r) {
			return &Error{Kind: NotFound, Op: "find region " + r, Message: fmt.Sprintf(
				"region %q is not in account %s's service catalog (it lists %s)", r, c.tenant,
				strings.Join(c.regions, ", "))}
		}
	}
	return nil
}
