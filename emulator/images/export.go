package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/imageflow/imageflow/emulator/objectstorage"
)

// runExport writes an image into its owner's container as Rackspace does: segments of
// ExportSegmentSize named <id>.vhd-00001 and on, and a dynamic manifest <id>.vhd over them.
func (s *Service) runExport(rname string, t *Task) (map[string]string, error) {
	var in exportInput
	_ = json.Unmarshal(t.Input, &in)
	objName := in.ImageUUID + ".vhd"
	s.store.Lock()
	img := s.regions[rname].Images[in.ImageUUID]
	err := exportAllowed(img, t.Owner, in.ImageUUID)
	var src io.ReadSeeker
	var imgCopy Image
	if err == nil {
		imgCopy = *img
		src = s.imageReader(img)
	}
	s.store.Unlock()
	if err != nil {
		return nil, err
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	switch hasContainer, hasObject := s.objects.Lookup(rname, t.Owner, in.Container, objName); {
	case !hasContainer:
		return nil, fmt.Errorf("Swift container '%s' was not found in %s; create it before exporting",
			in.Container, rname)
	case hasObject:
		return nil, fmt.Errorf("Swift already has an object with id '%s' in container '%s'", objName, in.Container)
	}
	if msg, bad := s.faults.TaskFailure(rname, "export", imgCopy.ID, imgCopy.Name); bad {
		return nil, errors.New(msg)
	}
	for i, off := 1, int64(0); off < imgCopy.Size; i++ {
		select {
		case <-s.store.Closing():
			return nil, errClosing
		default:
		}
		n := min(s.cfg.ExportSegmentSize, imgCopy.Size-off)
		err := s.objects.Put(rname, t.Owner, in.Container, fmt.Sprintf("%s-%05d", objName, i), src, n)
		if err != nil {
			return nil, exportFailed(in.Container, i, err)
		}
		off += n
	}
	if err := s.objects.PutManifest(rname, t.Owner, in.Container, objName, objName+"-"); err != nil {
		return nil, exportFailed(in.Container, 0, err)
	}
	return map[string]string{"export_location": in.Container + "/" + objName}, nil
}

// exportFailed says why segment i (0: the manifest) could not be written.
func exportFailed(container string, i int, err error) error {
	if errors.Is(err, objectstorage.ErrNoContainer) {
		return fmt.Errorf("Swift container '%s' was deleted during the export", container)
	}
	return fmt.Errorf("write export segment %d: %v", i, err)
}

func exportAllowed(img *Image, owner, id string) error {
	switch {
	case img == nil || !canSee(img, owner):
		return fmt.Errorf("Requested image for export was not found: %s", id)
	case img.Visibility == "public" || img.Props["image_type"] == "base":
		return fmt.Errorf("Base images cannot be exported: %s", id)
	case img.Owner != owner:
		return fmt.Errorf("Images shared with you cannot be exported; ask the owner to export it: %s", id)
	case img.Props["com.rackspace__1__options"] != "" && img.Props["com.rackspace__1__options"] != "0":
		return fmt.Errorf(
			"Image %s cannot be exported: it carries licensed software (com.rackspace__1__options=%s)",
			id,
			img.Props["com.rackspace__1__options"],
		)
	case img.Status != "active":
		return fmt.Errorf("Image %s cannot be exported while its status is %s", id, img.Status)
	}
	return nil
}
