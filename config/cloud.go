package config

import (
	"errors"
	"fmt"
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
