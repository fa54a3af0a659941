package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// VHD footer layout (Microsoft Virtual Hard Disk Image Format Specification).
const (
	vhdFooterSize    = 512
	vhdCookie        = "conectix"
	vhdDiskFixed     = 2
	vhdDiskDynamic   = 3
	vhdDiskDifferent = 4
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
	case vhdDiskFixed, vhdDiskDynamic:
	case vhdDiskDifferent:
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

// generatedImage is the deterministic content of a seeded image: size-512 bytes of disk data
// derived from seed, then a fixed-disk VHD footer. It is produced on demand, never stored.
type generatedImage struct {
	seed string
	size int64
	// overlays are later snapshots' changes: blocks whose bytes come from another seed. The
	// last overlay holding a block wins, so a chain of snapshots layers naturally.
	overlays []overlay
}

// overlay replaces the 64 KiB blocks in Runs ([from, to) block indices) with Seed's pattern.
type overlay struct {
	Seed string     `json:"seed"`
	Runs [][2]int64 `json:"runs"`
}

// patternFor is the seed pattern of a block: the newest overlay's that holds it, else the base's.
func (g generatedImage) patternFor(block int64) []byte {
	for i := len(g.overlays) - 1; i >= 0; i-- {
		runs := g.overlays[i].Runs
		j := sort.Search(len(runs), func(k int) bool { return runs[k][1] > block })
		if j < len(runs) && runs[j][0] <= block {
			return genPattern(g.overlays[i].Seed)
		}
	}
	return genPattern(g.seed)
}

const genBlock = 64 << 10

// ReadAt fills p with the bytes at off; every 64 KiB block is a seed pattern stamped with its index,
// so blocks differ and any range can be produced without the ones before it.
func (g generatedImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	footerAt := g.size - vhdFooterSize
	n := 0
	for n < len(p) && off < g.size {
		if off >= footerAt {
			footer := g.footer()
			c := copy(p[n:], footer[off-footerAt:])
			n += c
			off += int64(c)
			continue
		}
		block := off / genBlock
		pattern := g.patternFor(block)
		in := off % genBlock
		end := int64(genBlock)
		if remain := footerAt - block*genBlock; remain < end {
			end = remain
		}
		var stamp [8]byte
		binary.BigEndian.PutUint64(stamp[:], uint64(block))
		for in < end && n < len(p) {
			var c int
			if in < 8 {
				c = copy(p[n:], stamp[in:])
			} else {
				c = copy(p[n:], pattern[in:end])
			}
			n += c
			in += int64(c)
			off += int64(c)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (g generatedImage) footer() []byte {
	sum := md5.Sum([]byte("vhd-unique-id:" + g.seed))
	return MakeVHDFooter(uint64(g.size-vhdFooterSize), vhdDiskFixed, sum)
}

var patterns sync.Map // seed -> []byte

func genPattern(seed string) []byte {
	if p, ok := patterns.Load(seed); ok {
		return p.([]byte)
	}
	// Counter-mode MD5 gives incompressible, reproducible bytes without a PRNG dependency.
	var buf bytes.Buffer
	for i := 0; buf.Len() < genBlock; i++ {
		s := md5.Sum([]byte(fmt.Sprintf("%s/%d", seed, i)))
		buf.Write(s[:])
	}
	p, _ := patterns.LoadOrStore(seed, buf.Bytes()[:genBlock])
	return p.([]byte)
}

var checksums sync.Map // seed/size -> md5 hex

// checksum streams the generated bytes through MD5 once per process and remembers it.
func (g generatedImage) checksum() string {
	layers, _ := json.Marshal(g.overlays)
	key := fmt.Sprintf("%s/%d/%x", g.seed, g.size, md5.Sum(layers))
	if c, ok := checksums.Load(key); ok {
		return c.(string)
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(g, 0, g.size)); err != nil {
		panic(errors.New("generated image read failed: " + err.Error()))
	}
	c := hex.EncodeToString(h.Sum(nil))
	checksums.Store(key, c)
	return c
}
