// Package vhd writes the Virtual Hard Disk footer the emulator's images end with (Microsoft
// Virtual Hard Disk Image Format Specification): generated images carry one, and an import
// reads one back.
package vhd

import "encoding/binary"

// FooterSize and Cookie are the footer's length and its first eight bytes.
const (
	FooterSize = 512
	Cookie     = "conectix"
)

// Disk types a footer may name.
const (
	DiskFixed        = 2
	DiskDynamic      = 3
	DiskDifferencing = 4
)

// Checksum is the one's complement of the byte sum of the footer, checksum field excluded.
func Checksum(b []byte) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// MakeFooter builds a valid footer for a disk of diskSize bytes.
func MakeFooter(diskSize uint64, diskType uint32, uniqueID [16]byte) []byte {
	b := make([]byte, FooterSize)
	copy(b[0:8], Cookie)
	binary.BigEndian.PutUint32(b[8:12], 2)           // features: reserved bit set
	binary.BigEndian.PutUint32(b[12:16], 0x00010000) // format version 1.0
	binary.BigEndian.PutUint64(b[16:24], ^uint64(0)) // fixed disks have no data offset
	copy(b[28:32], "imfl")
	binary.BigEndian.PutUint32(b[32:36], 0x00010000)
	copy(b[36:40], "Wi2k")
	binary.BigEndian.PutUint64(b[40:48], diskSize)
	binary.BigEndian.PutUint64(b[48:56], diskSize)
	binary.BigEndian.PutUint32(b[56:60], chsGeometry(diskSize))
	binary.BigEndian.PutUint32(b[60:64], diskType)
	copy(b[68:84], uniqueID[:])
	binary.BigEndian.PutUint32(b[64:68], Checksum(b))
	return b
}

// chsGeometry follows the spec's algorithm closely enough for a plausible geometry.
func chsGeometry(size uint64) uint32 {
	sectors := size / 512
	if sectors > 65535*16*255 {
		sectors = 65535 * 16 * 255
	}
	spt, heads := uint64(17), uint64(4)
	cth := sectors / spt
	if cth/heads > 1023 {
		spt, heads = 63, 16
		cth = sectors / spt
	}
	cyl := cth / heads
	return uint32(cyl)<<16 | uint32(heads)<<8 | uint32(spt)
}
