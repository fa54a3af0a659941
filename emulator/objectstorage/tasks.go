package objectstorage

import (
	"context"
	"fmt"
	"io"

	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// What image tasks do with objects: an export writes an image as segments and a manifest into
// a container of its owner's, an import reads an object whole. Each method takes the store's
// lock itself and never holds it while bytes move.

// Lookup says whether tenant has container in region, and whether it holds object.
func (s *Service) Lookup(region, tenant, container, object string) (containerFound, objectFound bool) {
	s.store.Lock()
	defer s.store.Unlock()
	c := s.space(region, tenant).containers()[container]
	return c != nil, c != nil && c.Objects[object] != nil
}

// Open reads an object whole, its manifest followed; found is false when there is none.
func (s *Service) Open(region, tenant, container, object string) (
	r io.ReadSeekCloser, size int64, found bool, err error) {
	o, res, err := s.space(region, tenant).open(container, object)
	if o == nil {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, true, err
	}
	if len(res.gaps) > 0 {
		return nil, 0, true, fmt.Errorf("a segment of %s/%s is missing or changed", container, object)
	}
	// An import reads the object through the proxy as any client does, paced as one.
	body := s.store.OpenParts(res.parts)
	body.OnPart(s.throttle.pacer(context.Background(), res))
	return body, res.size, true, nil
}

// Put stores the n bytes src gives as an object, replacing one of the same name. It fails with
// ErrNoContainer when the container is gone.
func (s *Service) Put(region, tenant, container, object string, src io.Reader, n int64) error {
	fs := s.space(region, tenant)
	rel, size, etag, err := s.store.WriteBlob(fs.dataDir(), io.LimitReader(src, n), n)
	if err != nil {
		return fmt.Errorf("write %s/%s: %w", container, object, err)
	}
	return s.record(fs, container, &Object{Name: object, Size: size, ETag: etag, File: rel,
		ContentType: "application/octet-stream"})
}

// PutGenerated stores a section of a generated image as an object that keeps a reference to
// it, no bytes; its ETag is the section's MD5.
func (s *Service) PutGenerated(region, tenant, container, object string, sec seeded.Section) error {
	ref := s.gen.RefOf(sec)
	return s.record(s.space(region, tenant), container, &Object{Name: object, Size: sec.Len, ETag: sec.MD5(),
		Gen: &ref, ContentType: "application/octet-stream"})
}

// Sections are an object's bytes, its manifest followed, when every part is generated content:
// what an import needs to make a generated image of it without reading it.
func (s *Service) Sections(region, tenant, container, object string) ([]seeded.Section, bool) {
	o, res, err := s.space(region, tenant).open(container, object)
	if o == nil || err != nil {
		return nil, false
	}
	secs := make([]seeded.Section, 0, len(res.parts))
	var pos int64
	for _, p := range res.parts {
		sec, ok := p.Gen.(seeded.Section)
		if !ok {
			return nil, false
		}
		// The section at its place in the object: Whole checks it is that offset of its image.
		if sec.Off != pos {
			return nil, false
		}
		secs = append(secs, sec)
		pos += sec.Len
	}
	return secs, true
}

// PutManifest stores a dynamic large object whose segments are the container's objects named
// prefix and more.
func (s *Service) PutManifest(region, tenant, container, object, prefix string) error {
	return s.record(s.space(region, tenant), container, &Object{Name: object, ETag: emptyMD5,
		ContentType: "application/octet-stream", Manifest: container + "/" + prefix})
}

const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

func (s *Service) space(region, tenant string) *fileSpace {
	return &fileSpace{s: s, region: region, tenant: tenant}
}
