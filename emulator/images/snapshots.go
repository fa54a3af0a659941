package images

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// SnapshotRequest asks for a new snapshot of the server a seeded image was taken from, with a
// share of its 64 KiB blocks changed: what a nightly snapshot of a busy server looks like.
type SnapshotRequest struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
	Name    string `json:"name"`
	// ChangedPercent of the disk's blocks get new bytes (0 to 100).
	ChangedPercent float64 `json:"changed_percent"`
	// Pattern is "clustered" (one run of blocks, as a growing file) or "scattered" (blocks spread
	// evenly over the disk, as a database's pages).
	Pattern string `json:"pattern"`
}

// Snapshot makes the snapshot: same owner, properties (instance_uuid included, so both belong
// to one server's lineage) and tags as the parent, new bytes in the chosen blocks, and a real
// checksum. The parent must be a seeded image (or a snapshot of one).
func (s *Service) Snapshot(req SnapshotRequest) (string, error) {
	if req.ChangedPercent < 0 || req.ChangedPercent > 100 {
		return "", fmt.Errorf("changed_percent must be 0 to 100, got %v", req.ChangedPercent)
	}
	if req.Pattern != "clustered" && req.Pattern != "scattered" {
		return "", fmt.Errorf("pattern must be clustered or scattered, got %q", req.Pattern)
	}
	if req.Name == "" {
		return "", fmt.Errorf("name is required")
	}
	s.store.Lock()
	defer s.store.Unlock()
	reg := s.regions[req.Region]
	if reg == nil {
		return "", fmt.Errorf("no region %q", req.Region)
	}
	parent := reg.Images[req.ImageID]
	if parent == nil || parent.Seed == "" {
		return "", fmt.Errorf("no seeded image %s in %s (snapshots are made of seed images and their snapshots)",
			req.ImageID, req.Region)
	}
	seed := "snapshot:" + req.Region + "/" + req.ImageID + "/" + req.Name
	blocks := (parent.Size - vhdFooterSize) / seeded.Block
	layer := Overlay{Seed: seed, Runs: changedRuns(blocks, req.ChangedPercent, req.Pattern, seed)}
	g := parent.generated()
	g.Overlays = append(slices.Clone(g.Overlays), layer)
	t := core.Now()
	img := &Image{ID: core.NewID(), Name: req.Name, Status: "active", Visibility: "private",
		Tags: slices.Clone(parent.Tags), Checksum: g.Checksum(), Size: parent.Size, DiskFormat: parent.DiskFormat,
		ContainerFormat: parent.ContainerFormat, MinDisk: parent.MinDisk, MinRAM: parent.MinRAM,
		Owner: parent.Owner, CreatedAt: t, UpdatedAt: t, Props: map[string]string{},
		Members: map[string]*Member{}, Seed: parent.Seed, Overlays: g.Overlays}
	for k, v := range parent.Props {
		img.Props[k] = v
	}
	reg.Images[img.ID] = img
	s.store.Commit()
	return img.ID, nil
}

// changedRuns picks the changed blocks, as sorted [from, to) runs: one run a third of the way in
// (clustered), or blocks spaced evenly with a seeded jitter (scattered).
func changedRuns(blocks int64, percent float64, pattern, seed string) [][2]int64 {
	n := int64(float64(blocks) * percent / 100)
	if n <= 0 {
		return nil
	}
	if pattern == "clustered" {
		from := min(blocks/3, blocks-n)
		return [][2]int64{{from, from + n}}
	}
	step := float64(blocks) / float64(n)
	var runs [][2]int64
	for i := int64(0); i < n; i++ {
		sum := md5.Sum(fmt.Appendf(nil, "%s/%d", seed, i))
		jitter := float64(binary.BigEndian.Uint32(sum[:4])%1000) / 1000 * step
		b := min(int64(float64(i)*step+jitter), blocks-1)
		if len(runs) > 0 && runs[len(runs)-1][1] >= b {
			b = runs[len(runs)-1][1] // keep runs sorted and apart; a collision extends the run
			if b >= blocks {
				continue
			}
		}
		if len(runs) > 0 && runs[len(runs)-1][1] == b {
			runs[len(runs)-1][1] = b + 1
		} else {
			runs = append(runs, [2]int64{b, b + 1})
		}
	}
	return runs
}
