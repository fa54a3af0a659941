package emulator

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/imageflow/imageflow/emulator/identity"
)

// A generic OpenStack region (Config.GenericRegions) is Glance as a private cloud runs it, with
// no Rackspace tasks and, unless it is also one of Config.SwiftRegions, no object store.

var regionNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkRegions(cfg Config) error {
	for _, g := range cfg.GenericRegions {
		if slices.Contains(Regions, g) || !regionNamePattern.MatchString(g) {
			return fmt.Errorf("generic region %q: not a new region name", g)
		}
	}
	for _, g := range slices.Concat(cfg.SwiftRegions, cfg.GlanceDownloadRegions, cfg.WebDownloadRegions) {
		if !slices.Contains(cfg.GenericRegions, g) {
			return fmt.Errorf("region %q: swift, glance-download and web-download regions must be generic regions", g)
		}
	}
	return nil
}

func (e *Emulator) isGeneric(name string) bool { return slices.Contains(e.cfg.GenericRegions, name) }

// hasFiles reports a region with an object store: Rackspace's, and generic ones with Swift.
func (e *Emulator) hasFiles(name string) bool {
	return !e.isGeneric(name) || slices.Contains(e.cfg.SwiftRegions, name)
}

// regionNames are every region served: Rackspace's six, then the generic ones.
func (e *Emulator) regionNames() []string {
	return append(slices.Clone(Regions), e.cfg.GenericRegions...)
}

// catalogRegions are the regions as identity lists them in catalogs.
func (e *Emulator) catalogRegions() []identity.Region {
	var out []identity.Region
	for _, name := range e.regionNames() {
		out = append(out, identity.Region{Name: name, URL: e.RegionURL(name), Generic: e.isGeneric(name),
			ObjectStore: e.hasFiles(name)})
	}
	return out
}
