package images

import (
	"encoding/binary"
	"fmt"
)

// VHD footer layout (Microsoft Virtual Hard Disk Image Format Specification).
const (
	vhdFooterSize = 512
	vhdCookie     = "conectix"
)

// VHD disk types a footer may name: an import takes fixed and dynamic disks.
const (
	VHDDiskFixed        = 2
	VHDDiskDynamic      = 3
	VHDDiskDifferencing = 4
)

// VHDFooter is the part of a VHD footer that import validation reads.
type VHDFooter struct {
	CurrentSize uint64 // virtual disk size in bytes
	DiskType    uint32
	UniqueID    [16]byte
}

// ImportError is a VHD validation failure carrying the Rackspace code that the import task
// reports in its message.
type ImportError struct {
	Code   int
	Reason string
}

func (e *ImportError) Error() string { return fmt.Sprintf("Error code %d: %s", e.Code, e.Reason) }

// ParseVHDFooter validates the last 512 bytes of an image the way Rackspace's import does.
func ParseVHDFooter(b []byte) (VHDFooter, error) {
	var f VHDFooter
	if len(b) != vhdFooterSize {
		return f, &ImportError{396, fmt.Sprintf("not a valid VHD: footer is %d bytes, want 512", len(b))}
	}
	if string(b[0:8]) != vhdCookie {
		return f, &ImportError{396, "not a valid VHD: footer cookie is not \"conectix\""}
	}
	if got, want := binary.BigEndian.Uint32(b[64:68]), vhdChecksum(b); got != want {
		return f, &ImportError{396, fmt.Sprintf("not a valid VHD: footer checksum %08x, computed %08x", got, want)}
	}
	f.CurrentSize = binary.BigEndian.Uint64(b[48:56])
	f.DiskType = binary.BigEndian.Uint32(b[60:64])
	copy(f.UniqueID[:], b[68:84])
	switch f.DiskType {
	case VHDDiskFixed, VHDDiskDynamic:
	case VHDDiskDifferencing:
		return f, &ImportError{721, "differencing disks (with a parent) cannot be imported"}
	default:
		return f, &ImportError{
			523,
			fmt.Sprintf("only fixed or dynamic disks can be imported, disk type is %d", f.DiskType),
		}
	}
	if f.UniqueID == [16]byte{} {
		return f, &ImportError{614, "VHD unique id is all zeros"}
	}
	return f, nil
}

// vhdChecksum is the one's complement of the byte sum of the footer, checksum field excluded.
func vhdChecksum(b []byte) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// MakeVHDFooter builds a valid footer for a disk of diskSize bytes.
func MakeVHDFooter(diskSize uint64, diskType uint32, uniqueID [16]byte) []byte {
	b := make([]byte, vhdFooterSize)
	copy(b[0:8], vhdCookie)
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
	binary.BigEndian.PutUint32(b[64:68], vhdChecksum(b))
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
