package cloud

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"
)

// A generation's ranges record (rangesObject) lists its segments, one keptRange each, in the
// shape of generationRanges. At 160 GB and 4 MiB ranges it holds 38,147 of them, about 5 MB of
// JSON, so it is written and read as a stream: a whole copy of it in the worker's memory, with
// the encoder's buffer growing to it and every range's strings beside, was the largest thing a
// lineage copy allocated at its end and its start.

// maxRangesRecord bounds the record a copy reads (about 128 bytes a range: 130,000 ranges).
const maxRangesRecord = 16 << 20

// rangesWriter writes a generation's record: the header, then the ranges as they are yielded.
type rangesWriter struct {
	generation string
	written    time.Time
	ranges     iter.Seq[keptRange]
}

// WriteTo writes the record to w; it writes the same bytes every time it is called.
func (rw rangesWriter) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	enc := json.NewEncoder(bw)
	head, err := json.Marshal(struct {
		Generation string    `json:"generation"`
		Written    time.Time `json:"written"`
	}{rw.generation, rw.written})
	if err != nil {
		return 0, err
	}
	bw.Write(head[:len(head)-1]) // the header object, still open for its ranges
	bw.WriteString(`,"ranges":[`)
	first := true
	for k := range rw.ranges {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		if err := enc.Encode(k); err != nil { // a newline after each: one range a line
			return cw.n, err
		}
	}
	bw.WriteString("]}\n")
	err = bw.Flush() // bufio keeps the first write error, so this reports any above
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// putRanges writes the record into name: its length first (a pass through io.Discard), then
// the bytes through a pipe, so the object store takes it without the worker holding it.
func (c *Client) putRanges(ctx context.Context, region, container, name string, rw rangesWriter) error {
	size, err := rw.WriteTo(io.Discard)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := rw.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	_, err = c.PutStream(ctx, region, container, name, pr, size, "")
	pr.CloseWithError(io.ErrClosedPipe) // ends the writer if the request stopped reading early
	return err
}

// readRanges reads generation's record from container, calling each for every range in the
// order written. False, and no error, when there is no record.
func (c *Client) readRanges(ctx context.Context, region, container, generation string, each func(keptRange)) (
	bool, error) {
	op := fmt.Sprintf("read %s/%s in %s", container, rangesObject(generation), region)
	sc, err := c.Files(region)
	if err != nil {
		return false, err
	}
	resp, err := c.stream(ctx, op, "GET", objectURL(sc, container, rangesObject(generation)), nil, 0, nil, 200)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if err := decodeRanges(io.LimitReader(resp.Body, maxRangesRecord), each); err != nil {
		return false, &Error{Kind: Invalid, Op: op, Message: "not the ranges record imageflow wrote: " + err.Error()}
	}
	return true, nil
}

// decodeRanges reads a record's ranges one at a time; other fields are skipped.
func decodeRanges(r io.Reader, each func(keptRange)) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "ranges" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := expectDelim(dec, '['); err != nil {
			return err
		}
		for dec.More() {
			var k keptRange
			if err := dec.Decode(&k); err != nil {
				return err
			}
			each(k)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("found %v where %v belongs", tok, want)
	}
	return nil
}
