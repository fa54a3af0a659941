package cloud

import (
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// FromCloudsYAML reads a cloud of clouds.yaml, where the OpenStack clients look for it
// (OS_CLIENT_CONFIG_FILE, else ./clouds.yaml, ~/.config/openstack/clouds.yaml,
// /etc/openstack/clouds.yaml; secrets may sit in secure.yaml beside it). It returns the
// credentials and the cloud's region_name ("" when it names none). An auth_url without a
// version is Keystone v3, as identity_api_version 3 is everywhere now.
func FromCloudsYAML(name string) (Credentials, string, error) {
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(name))
	if err != nil {
		return Credentials{}, "", fmt.Errorf("clouds.yaml: %w", err)
	}
	u := strings.TrimRight(ao.IdentityEndpoint, "/")
	if !strings.HasSuffix(u, "/v2.0") && !strings.HasSuffix(u, "/v3") {
		u += "/v3"
	}
	c := Credentials{IdentityURL: u, Username: ao.Username, Password: ao.Password, UserDomainName: ao.DomainName,
		ApplicationCredentialID: ao.ApplicationCredentialID, ApplicationCredentialSecret: ao.ApplicationCredentialSecret,
		Token: ao.TokenID}
	if s := ao.Scope; s != nil {
		c.ProjectID, c.ProjectName, c.ProjectDomainName = s.ProjectID, s.ProjectName, s.DomainName
	}
	if err := c.Check(); err != nil {
		return Credentials{}, "", fmt.Errorf("clouds.yaml cloud %q: %w", name, err)
	}
	return c, eo.Region, nil
}
