package core

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrTooLarge reports a body longer than the limit it was written under.
var ErrTooLarge = errors.New("body exceeds the size limit")

// DataDir is the folder bytes and the saved state live in.
func (s *Store) DataDir() string { return s.dataDir }

// WriteBlob streams src into a new file under the data folder (dir is relative to it),
// computing MD5 on the way; it never holds the body in memory. It returns the file's relative
// path.
func (s *Store) WriteBlob(dir string, src io.Reader, limit int64) (rel string, size int64, etag string, err error) {
	abs := filepath.Join(s.dataDir, dir)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", 0, "", fmt.Errorf("make data folder: %w", err)
	}
	f, err := os.CreateTemp(abs, "blob-*")
	if err != nil {
		return "", 0, "", fmt.Errorf("create data file: %w", err)
	}
	rel = filepath.Join(dir, filepath.Base(f.Name()))
	h := md5.New()
	size, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(src, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size > limit {
		err = ErrTooLarge
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", 0, "", err
	}
	return rel, size, hex.EncodeToString(h.Sum(nil)), nil
}

// RemoveFile deletes a data file by its relative path; a missing file is not an error.
func (s *Store) RemoveFile(rel string) {
	if rel == "" {
		return
	}
	if err := os.Remove(filepath.Join(s.dataDir, rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove data file", "file", rel, "err", err)
	}
}

// FilePart is one part of a stream: a data file, by its path relative to the data folder, or
// bytes made on demand (Gen: generated content, which takes no room).
type FilePart struct {
	Rel  string
	Size int64
	Gen  io.ReaderAt
}

// PartsReader reads several data files as one seekable stream, opening one file at a time.
type PartsReader struct {
	dataDir string
	parts   []FilePart
	size    int64
	off     int64
	cur     *os.File
	curIdx  int
	// entered is the last part a read began in; enter, when set, is called as a read begins in
	// another part (a manifest's read throttling waits there, per segment, as Swift's does).
	entered int
	enter   func(part int)
}

// OnPart calls f before the first byte read from each part (again after a seek back into it).
func (p *PartsReader) OnPart(f func(part int)) { p.enter = f }

// OpenParts reads parts in order as one stream.
func (s *Store) OpenParts(parts []FilePart) *PartsReader {
	p := &PartsReader{dataDir: s.dataDir, parts: parts, curIdx: -1, entered: -1}
	for _, pt := range parts {
		p.size += pt.Size
	}
	return p
}

func (p *PartsReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	start := int64(0)
	for i, pt := range p.parts {
		if p.off >= start+pt.Size {
			start += pt.Size
			continue
		}
		if p.entered != i && p.enter != nil {
			p.enter(i)
		}
		p.entered = i
		var src io.ReaderAt = pt.Gen
		if src == nil {
			if p.curIdx != i {
				p.closeCur()
				f, err := os.Open(filepath.Join(p.dataDir, pt.Rel))
				if err != nil {
					return 0, fmt.Errorf("open segment: %w", err)
				}
				p.cur, p.curIdx = f, i
			}
			src = p.cur
		}
		want := min(int64(len(b)), start+pt.Size-p.off)
		n, err := src.ReadAt(b[:want], p.off-start)
		p.off += int64(n)
		if err == io.EOF && int64(n) == want {
			err = nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // a segment shorter than recorded
		}
		return n, err
	}
	return 0, io.EOF
}

// Seek moves within the whole stream.
func (p *PartsReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("seek before start")
	}
	p.off = offset
	return offset, nil
}

func (p *PartsReader) closeCur() {
	if p.cur != nil {
		_ = p.cur.Close()
		p.cur, p.curIdx = nil, -1
	}
}

// Close closes the file open now.
func (p *PartsReader) Close() error { p.closeCur(); return nil }
