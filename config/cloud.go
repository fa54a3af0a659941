package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/imageflow/imageflow/cloud"
)

// Credentials are the account the cloud client signs in as: the named cloud of clouds.yaml when
// IMAGEFLOW_CLOUD_NAME is set, else the IMAGEFLOW_CLOUD_* variables. Errors name variables,
// never their values.
func (c Cloud) Credentials() (cloud.Credentials, error) {
	if c.Name != "" {
		if set := c.accountVars(); len(set) > 0 {
			return cloud.Credentials{}, fmt.Errorf("IMAGEFLOW_CLOUD_NAME takes the account from clouds.yaml; "+
				"unset %s", strings.Join(set, ", "))
		}
		creds, region, err := cloud.FromCloudsYAML(c.Name)
		creds.DefaultRegion = region
		return creds, err
	}
	creds := cloud.Credentials{IdentityURL: c.IdentityURL, Username: c.Username, APIKey: c.APIKey.Value(),
		Password: c.Password.Value(), UserDomainName: c.UserDomainName, ProjectID: c.ProjectID,
		ProjectName: c.ProjectName, ProjectDomainName: c.ProjectDomainName,
		ApplicationCredentialID: c.AppCredentialID, ApplicationCredentialSecret: c.AppCredentialKey.Value()}
	if !strings.HasSuffix(strings.TrimRight(c.IdentityURL, "/"), "/v3") {
		var errs []string
		if c.Username == "" {
			errs = append(errs, "IMAGEFLOW_CLOUD_USERNAME is required")
		}
		if c.APIKey == "" && c.Password == "" {
			errs = append(errs, "IMAGEFLOW_CLOUD_API_KEY or IMAGEFLOW_CLOUD_PASSWORD is required")
		}
		if len(errs) > 0 {
			if set := openStackVars(); len(set) > 0 {
				errs = append(errs, fmt.Sprintf("%s set, but imageflow reads only OS_CLOUD of the OpenStack "+
					"clients' variables: put the account in clouds.yaml and set OS_CLOUD (or IMAGEFLOW_CLOUD_NAME), "+
					"or use the IMAGEFLOW_CLOUD_* variables", strings.Join(set, ", ")))
			}
			return creds, errors.New(strings.Join(errs, "; "))
		}
	}
	if err := creds.Check(); err != nil {
		return creds, fmt.Errorf("IMAGEFLOW_CLOUD_*: %w", err)
	}
	return creds, nil
}

// PeerCredentials are the peers' accounts, each a cloud of clouds.yaml, by name.
func (c Cloud) PeerCredentials() (map[string]cloud.Credentials, error) {
	out := map[string]cloud.Credentials{}
	for _, name := range c.Peers {
		creds, region, err := cloud.FromCloudsYAML(name)
		if err != nil {
			return nil, fmt.Errorf("IMAGEFLOW_CLOUD_PEERS: %w", err)
		}
		creds.DefaultRegion = region
		out[name] = creds
	}
	return out, nil
}

// accountVars names the account variables that are set.
func (c Cloud) accountVars() []string {
	var set []string
	for name, v := range map[string]string{"IMAGEFLOW_CLOUD_USERNAME": c.Username,
		"IMAGEFLOW_CLOUD_API_KEY": string(c.APIKey), "IMAGEFLOW_CLOUD_PASSWORD": string(c.Password),
		"IMAGEFLOW_CLOUD_PROJECT_ID": c.ProjectID, "IMAGEFLOW_CLOUD_PROJECT_NAME": c.ProjectName,
		"IMAGEFLOW_CLOUD_APPLICATION_CREDENTIAL_ID":     c.AppCredentialID,
		"IMAGEFLOW_CLOUD_APPLICATION_CREDENTIAL_SECRET": string(c.AppCredentialKey)} {
		if v != "" {
			set = append(set, name)
		}
	}
	slices.Sort(set)
	return set
}

// useOSCloud takes OS_CLOUD as the clouds.yaml cloud, as the OpenStack clients do, when no
// imageflow account is configured: an operator's shell that works for `openstack` works here.
func (c *Cloud) useOSCloud() {
	if c.Name == "" && len(c.accountVars()) == 0 {
		c.Name = os.Getenv("OS_CLOUD")
	}
}

// openStackVars names the OpenStack clients' account variables that are set (imageflow does not
// read them: a password in the environment of every process is what clouds.yaml avoids).
func openStackVars() []string {
	var set []string
	for _, name := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_ID",
		"OS_USER_DOMAIN_NAME", "OS_APPLICATION_CREDENTIAL_ID", "OS_TOKEN"} {
		if os.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	return set
}

// checkIdentityURL refuses an identity URL no client could call, naming the variable (a URL
// without its scheme failed only at the first call, as "unsupported protocol scheme").
func (c Cloud) checkIdentityURL() error {
	if c.Name != "" {
		return nil
	}
	u, err := url.Parse(c.IdentityURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("IMAGEFLOW_CLOUD_IDENTITY_URL=%q is not an http:// or https:// URL (e.g. "+
			"http://localhost:8900/v2.0/)", c.IdentityURL)
	}
	return nil
}
