package images

import (
	"time"

	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// Overlay is a snapshot's changed blocks (see seeded.Overlay).
type Overlay = seeded.Overlay

// Seeded is an active image whose bytes are generated from seed (see the generated package):
// what the emulator's base and demo images are, taking no room on disk.
func Seeded(id, name, owner, visibility, seed string, size int64, created time.Time) *Image {
	g := seeded.Spec{Seed: seed, Size: size}
	return &Image{
		ID: id, Name: name, Status: "active", Visibility: visibility,
		Tags: []string{}, Checksum: g.Checksum(), Size: size,
		DiskFormat: "vhd", ContainerFormat: "ovf", Owner: owner,
		CreatedAt: created, UpdatedAt: created,
		Props: map[string]string{}, Members: map[string]*Member{},
		Seed: seed,
	}
}

// generated is a seeded image's content.
func (img *Image) generated() seeded.Spec {
	return seeded.Spec{Seed: img.Seed, Size: img.Size, Overlays: img.Overlays}
}
