package identity

import (
	"net"
	"net/url"
	"strings"
)

// Region is one region's place in the service catalog.
type Region struct {
	Name string
	// URL is the region's host, e.g. http://127.0.0.1:8901.
	URL string
	// Generic regions list Glance at their root, as Keystone catalogs of private clouds do;
	// Rackspace's list it at /v2.
	Generic bool
	// ObjectStore says the region runs Cloud Files (Swift).
	ObjectStore bool
}

// catalog is the v2.0 service catalog of tenant: images, object storage and identity in every
// region that has them, on the host the client called (see onHost).
func (s *Service) catalog(tenant, host string) []any {
	var imgs, files, ids []any
	self := hostName(s.cfg.URL())
	identity := strings.TrimSuffix(onHost(s.cfg.URL(), self, host), "/")
	for _, reg := range s.cfg.Regions() {
		reg.URL = onHost(reg.URL, self, host)
		// Clients look up the identity service in the region they work in (openstack image add
		// project resolves the project through it), so it is listed in every region.
		ids = append(ids, map[string]any{"region": reg.Name, "tenantId": tenant, "publicURL": identity,
			"internalURL": identity})
		glance := reg.URL + "/v2"
		if reg.Generic {
			glance = strings.TrimSuffix(reg.URL, "/")
		}
		img := map[string]any{"region": reg.Name, "publicURL": glance, "internalURL": glance}
		if !reg.Generic {
			img["tenantId"] = tenant
		}
		imgs = append(imgs, img)
		if reg.ObjectStore {
			store := reg.URL + "/v1/MossoCloudFS_" + tenant
			files = append(files, map[string]any{"region": reg.Name, "tenantId": "MossoCloudFS_" + tenant,
				"publicURL": store, "internalURL": store})
		}
	}
	return []any{
		map[string]any{"name": "cloudImages", "type": "image", "endpoints": imgs},
		map[string]any{"name": "cloudFiles", "type": "object-store", "endpoints": files},
		map[string]any{"name": "cloudIdentity", "type": "identity", "endpoints": ids},
	}
}

// onHost puts u, when it is on the emulator's own host (self), on the host name the client
// reached identity by, keeping u's port: a starter on a docker host that calls localhost:8900
// gets regions on localhost:8901..., a worker in the compose network that calls emulator:8900
// gets emulator:8901..., from one emulator. URLs on other hosts (regions served elsewhere) stay.
// A client that sends another Host misleads only itself. Without a usable Host, u stays.
func onHost(u, self, host string) string {
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	parsed, err := url.Parse(u)
	if err != nil || name == "" || parsed.Hostname() != self || strings.ContainsAny(name, "/@?#") {
		return u
	}
	if port := parsed.Port(); port != "" {
		parsed.Host = net.JoinHostPort(strings.Trim(name, "[]"), port)
	} else {
		parsed.Host = name
	}
	return parsed.String()
}

// hostName is u's host name, "" when u is not a URL.
func hostName(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return parsed.Hostname()
}
