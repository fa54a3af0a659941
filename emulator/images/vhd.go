package images

import (
	"encoding/binary"
	"fmt"

	"github.com/imageflow/imageflow/emulator/internal/vhd"
)

// VHD footer layout (Microsoft Virtual Hard Disk Image Format Specification).
const (
	vhdFooterSize = vhd.FooterSize
	vhdCookie     = vhd.Cookie
)

// VHD disk types a footer may name: an import takes fixed and dynamic disks.
const (
	VHDDiskFixed        = vhd.DiskFixed
	VHDDiskDynamic      = vhd.DiskDynamic
	VHDDiskDifferencing = vhd.DiskDifferencing
)

// MakeVHDFooter builds a valid footer for a disk of diskSize bytes.
func MakeVHDFooter(diskSize uint64, diskType uint32, uniqueID [16]byte) []byte {
	return vhd.MakeFooter(diskSize, diskType, uniqueID)
}

func vhdChecksum(b []byte) uint32 { return vhd.Checksum(b) }

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
