package emulator

import (
	"time"

	"github.com/imageflow/imageflow/emulator/images"
	"github.com/imageflow/imageflow/emulator/internal/core"
)

// RackspaceTenant owns the public base images, as an internal account does at Rackspace.
const RackspaceTenant = "rackspace"

type baseImage struct {
	name, distro, version string
}

var baseImages = []baseImage{
	{"Ubuntu 24.04 LTS (Noble Numbat) (PVHVM)", "ubuntu", "24.04"},
	{"Debian 12 (Bookworm) (PVHVM)", "debian", "12"},
	{"CentOS Stream 9 (PVHVM)", "centos", "9"},
}

const baseImageSize = 16 << 20

// SeedImage describes one of the snapshot images the default demo account starts with.
type SeedImage struct {
	Name     string
	Size     int64
	Licensed bool // com.rackspace__1__options other than "0": not exportable
	Props    map[string]string
	Tags     []string
}

// DemoImages are owned by the first account (demo) in its default region.
var DemoImages = []SeedImage{
	{
		Name:  "demo-web-01",
		Size:  64 << 20,
		Props: map[string]string{"app": "web", "team": "platform", "os_version": "ubuntu-24.04"},
		Tags:  []string{"web", "production"},
	},
	{
		Name:  "demo-db-01",
		Size:  256 << 20,
		Props: map[string]string{"app": "postgres", "team": "data"},
		Tags:  []string{"db"},
	},
	{
		Name:     "demo-rhel-01",
		Size:     32 << 20,
		Licensed: true,
		Props:    map[string]string{"app": "erp"},
		Tags:     []string{"rhel"},
	},
}

func (e *Emulator) seed() {
	created := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	for _, rname := range Regions {
		r := e.st.Regions[rname]
		for _, b := range baseImages {
			img := images.Seeded(core.StableID(rname+"/"+b.name), b.name, RackspaceTenant, "public",
				"base:"+b.name, baseImageSize, created)
			img.Props = map[string]string{
				"image_type":                               "base",
				"os_type":                                  "linux",
				"org.openstack__1__os_distro":              "org." + b.distro,
				"org.openstack__1__os_version":             b.version,
				"com.rackspace__1__build_core":             "1",
				"com.rackspace__1__build_managed":          "1",
				"com.rackspace__1__visible_core":           "1",
				"com.rackspace__1__options":                "0",
				"com.rackspace__1__release_id":             "1000",
				"com.rackspace__1__source":                 "kickstart",
				"vm_mode":                                  "hvm",
				"auto_disk_config":                         "disabled",
				"com.rackspace__1__ui_default_show":        "True",
				"org.openstack__1__architecture":           "x64",
				"com.rackspace__1__platform_target":        "PublicCloud",
				"com.rackspace__1__release_build_date":     "2026-01-05_12-00-00",
				"com.rackspace__1__visible_managed":        "1",
				"com.rackspace__1__visible_rackconnect":    "1",
				"com.rackspace__1__release_version":        "1",
				"com.rackspace__1__build_rackconnect":      "1",
				"com.rackspace__1__build_config_options":   "base_mgdops_rhel",
				"com.rackspace__1__ui_default_show_region": rname,
			}
			img.Protected = true
			img.MinDisk, img.MinRAM = 20, 512
			r.Images[img.ID] = img
		}
	}
	if len(e.cfg.Accounts) == 0 {
		return
	}
	owner := e.cfg.Accounts[0]
	region := owner.DefaultRegion
	if e.st.Regions[region] == nil {
		region = "DFW"
	}
	base := e.st.Regions[region].Images[core.StableID(region+"/"+baseImages[0].name)]
	for i, s := range append(append([]SeedImage{}, DemoImages...), e.cfg.Images...) {
		img := images.Seeded(core.StableID(region+"/"+owner.Tenant+"/"+s.Name), s.Name, owner.Tenant,
			"private", "demo:"+s.Name, s.Size, created.Add(time.Duration(i+1)*time.Hour))
		img.Props = map[string]string{
			"image_type":                  "snapshot",
			"instance_uuid":               core.StableID("server/" + s.Name),
			"base_image_ref":              base.ID,
			"org.openstack__1__os_distro": base.Props["org.openstack__1__os_distro"],
			"com.rackspace__1__options":   "0",
			"os_type":                     "linux",
			"vm_mode":                     "hvm",
		}
		if s.Licensed {
			img.Props["com.rackspace__1__options"] = "1"
			img.Props["org.openstack__1__os_distro"] = "com.redhat"
		}
		for k, v := range s.Props {
			img.Props[k] = v
		}
		img.Tags = append([]string{}, s.Tags...)
		img.MinDisk, img.MinRAM = 20, 1024
		e.st.Regions[region].Images[img.ID] = img
	}
}
