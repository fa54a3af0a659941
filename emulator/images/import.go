package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// ImportNotFound is the import task's message for an object it cannot read.
const ImportNotFound = "Error: Image not found for import. Possible invalid location"

func (s *Service) runImport(rname string, t *Task) (map[string]string, error) {
	var in importInput
	_ = json.Unmarshal(t.Input, &in)
	cname, oname, _ := strings.Cut(in.ImportFrom, "/")
	src, srcSize, found, err := s.objects.Open(rname, t.Owner, cname, oname)
	if !found || err != nil {
		return nil, errors.New(ImportNotFound)
	}
	defer src.Close()
	name := in.ImageProperties["name"]
	if name == "" {
		name = path.Base(oname)
	}
	if msg, bad := s.faults.TaskFailure(rname, "import", "", name); bad {
		return nil, errors.New(msg)
	}
	if srcSize > s.cfg.MaxImportSize {
		return nil, &ImportError{
			609,
			fmt.Sprintf("physical size %d is larger than the limit of %d bytes", srcSize, s.cfg.MaxImportSize),
		}
	}
	if err := s.checkFooter(src, srcSize); err != nil {
		return nil, err
	}
	tm := core.Now()
	img := &Image{ID: core.NewID(), Name: name, Status: "active", Visibility: "private", Tags: []string{},
		DiskFormat: "vhd", ContainerFormat: "ovf", Owner: t.Owner,
		CreatedAt: tm, UpdatedAt: tm, Props: map[string]string{"image_type": "import"},
		Members: map[string]*Member{}}
	if err := s.importBytes(rname, t.Owner, cname, oname, src, img); err != nil {
		return nil, err
	}
	s.store.Lock()
	s.regions[rname].Images[img.ID] = img
	s.store.Commit()
	s.store.Unlock()
	return map[string]string{"image_id": img.ID}, nil
}

// checkFooter validates the VHD footer at the end of src and rewinds it.
func (s *Service) checkFooter(src io.ReadSeeker, size int64) error {
	if size < vhdFooterSize {
		return &ImportError{396, fmt.Sprintf("not a valid VHD: %d bytes is shorter than a footer", size)}
	}
	footer := make([]byte, vhdFooterSize)
	if _, err := src.Seek(size-vhdFooterSize, io.SeekStart); err != nil {
		return &ImportError{111, err.Error()}
	}
	if _, err := io.ReadFull(src, footer); err != nil {
		return &ImportError{111, fmt.Sprintf("could not read the VHD footer: %v", err)}
	}
	f, err := ParseVHDFooter(footer)
	if err != nil {
		return err
	}
	if int64(f.CurrentSize) > s.cfg.MaxImportSize || int64(f.CurrentSize) < 0 {
		return &ImportError{
			413,
			fmt.Sprintf("virtual size %d is larger than the limit of %d bytes", f.CurrentSize, s.cfg.MaxImportSize),
		}
	}
	_, err = src.Seek(0, io.SeekStart)
	return err
}

// importBytes gives img the object's bytes: a file of them, or, when the emulator keeps
// generated objects and the object is one generated image's whole content, that image's
// generator (no bytes read or written; its checksum is the generated image's).
func (s *Service) importBytes(rname, owner, cname, oname string, src io.Reader, img *Image) error {
	if s.cfg.GeneratedObjects {
		if secs, ok := s.objects.Sections(rname, owner, cname, oname); ok {
			if spec, whole := seeded.Whole(secs); whole {
				img.Seed, img.Overlays, img.Size, img.Checksum = spec.Seed, spec.Overlays, spec.Size, spec.Checksum()
				return nil
			}
		}
	}
	rel, size, sum, err := s.store.WriteBlob(path.Join("images", rname), src, s.cfg.MaxImportSize)
	if err != nil {
		return &ImportError{111, fmt.Sprintf("could not read the object: %v", err)}
	}
	img.File, img.Size, img.Checksum = rel, size, sum
	return nil
}
