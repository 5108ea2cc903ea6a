package evidence

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A zip file describes its entries twice: a local header before each
// entry's data, read by streaming extractors front to back, and the
// central directory at the end, read by everything else (Go's
// archive/zip included). A bundle whose two descriptions differ can show
// a streaming extractor files that Verify never read. So Verify reads the
// bundle as one strict layout: the entries' local headers and data one
// after another from the first byte, in central-directory order, then the
// central directory, then its end record, with nothing before, between or
// after them, and each entry's compressed data exactly its stated size.
// readZipEntries returns the contents of the entries that way, or an error
// saying where the layout departs.

// Signatures and fixed sizes from the zip format (APPNOTE.TXT 4.3).
const (
	sigLocal         = 0x04034b50
	sigCentral       = 0x02014b50
	sigDescriptor    = 0x08074b50
	sigEnd           = 0x06054b50
	sigEnd64         = 0x06064b50
	sigEnd64Locator  = 0x07064b50
	localHeaderLen   = 30
	centralHeaderLen = 46
	endLen           = 22
	end64LocatorLen  = 20
	end64Len         = 56
	zip64ExtraID     = 0x0001
	flagEncrypted    = 0x1
	flagDescriptor   = 0x8
	max16            = 0xffff
	max32            = 0xffffffff
)

// errLayout marks a bundle whose zip structure Verify refuses.
var errLayout = errors.New("zip layout")

func layoutErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errLayout, fmt.Sprintf(format, a...))
}

// zipEnd is what the end records say about the central directory.
type zipEnd struct {
	entries, cdOffset, cdSize uint64
	cdEnd                     uint64 // where the central directory must end
}

// readEnd reads the end of central directory record (and the zip64 one
// when the entries need it) at the very end of the file: writ's bundles
// carry no archive comment, so anything after the record is refused.
func readEnd(r io.ReaderAt, size int64) (zipEnd, error) {
	if size < endLen {
		return zipEnd{}, layoutErr("too short for an end record")
	}
	b := make([]byte, endLen)
	if _, err := r.ReadAt(b, size-endLen); err != nil {
		return zipEnd{}, err
	}
	le := binary.LittleEndian
	if le.Uint32(b) != sigEnd {
		return zipEnd{}, layoutErr("the file does not end with the end of central directory record (a comment or trailing bytes)")
	}
	if le.Uint16(b[4:]) != 0 || le.Uint16(b[6:]) != 0 || le.Uint16(b[8:]) != le.Uint16(b[10:]) || le.Uint16(b[20:]) != 0 {
		return zipEnd{}, layoutErr("the end record names several disks or a comment")
	}
	e := zipEnd{entries: uint64(le.Uint16(b[10:])), cdSize: uint64(le.Uint32(b[12:])),
		cdOffset: uint64(le.Uint32(b[16:])), cdEnd: uint64(size - endLen)}
	if e.entries != max16 && e.cdSize != max32 && e.cdOffset != max32 {
		return e, nil
	}
	// zip64: a locator just before the end record points at the zip64 end
	// record, which must sit just before the locator.
	if size < endLen+end64LocatorLen+end64Len {
		return zipEnd{}, layoutErr("too short for a zip64 end record")
	}
	loc := make([]byte, end64LocatorLen)
	if _, err := r.ReadAt(loc, size-endLen-end64LocatorLen); err != nil {
		return zipEnd{}, err
	}
	at := uint64(size - endLen - end64LocatorLen - end64Len)
	if le.Uint32(loc) != sigEnd64Locator || le.Uint32(loc[4:]) != 0 || le.Uint64(loc[8:]) != at || le.Uint32(loc[16:]) != 1 {
		return zipEnd{}, layoutErr("the zip64 end locator is missing or points elsewhere")
	}
	b = make([]byte, end64Len)
	if _, err := r.ReadAt(b, int64(at)); err != nil {
		return zipEnd{}, err
	}
	if le.Uint32(b) != sigEnd64 || le.Uint64(b[4:]) != end64Len-12 || le.Uint32(b[16:]) != 0 || le.Uint32(b[20:]) != 0 ||
		le.Uint64(b[24:]) != le.Uint64(b[32:]) {
		return zipEnd{}, layoutErr("the zip64 end record is malformed or has extensible data")
	}
	return zipEnd{entries: le.Uint64(b[32:]), cdSize: le.Uint64(b[40:]), cdOffset: le.Uint64(b[48:]), cdEnd: at}, nil
}

// entry is one file as the central directory describes it.
type entry struct {
	name             string
	flags, method    uint16
	crc              uint32
	csize, usize     uint64
	offset           uint64 // of its local header
	zip64            bool   // sizes or offset needed the zip64 extra field
	modTime, modDate uint16
}

// readCentral parses the central directory, which must fill exactly the
// space the end record gives it.
func readCentral(r io.ReaderAt, end zipEnd) ([]entry, error) {
	if end.cdOffset > end.cdEnd || end.cdEnd-end.cdOffset != end.cdSize {
		return nil, layoutErr("the central directory does not end where the end record begins")
	}
	if end.cdSize > MaxBundleFiles*(centralHeaderLen+3*max16) {
		return nil, layoutErr("the central directory is too large")
	}
	cd := make([]byte, end.cdSize)
	if _, err := r.ReadAt(cd, int64(end.cdOffset)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	var out []entry
	for p := 0; p < len(cd); {
		if uint64(len(out)) >= end.entries {
			return nil, layoutErr("the central directory holds more than the %d entries the end record counts", end.entries)
		}
		if len(cd)-p < centralHeaderLen || le.Uint32(cd[p:]) != sigCentral {
			return nil, layoutErr("central directory entry %d is malformed", len(out))
		}
		h := cd[p:]
		nl, el, cl := int(le.Uint16(h[28:])), int(le.Uint16(h[30:])), int(le.Uint16(h[32:]))
		if len(h) < centralHeaderLen+nl+el+cl {
			return nil, layoutErr("central directory entry %d runs past the directory", len(out))
		}
		e := entry{name: string(h[centralHeaderLen : centralHeaderLen+nl]), flags: le.Uint16(h[8:]), method: le.Uint16(h[10:]),
			modTime: le.Uint16(h[12:]), modDate: le.Uint16(h[14:]), crc: le.Uint32(h[16:]),
			csize: uint64(le.Uint32(h[20:])), usize: uint64(le.Uint32(h[24:])), offset: uint64(le.Uint32(h[42:]))}
		if le.Uint16(h[34:]) != 0 {
			return nil, layoutErr("%s: entry on another disk", e.name)
		}
		if err := e.zip64Extra(h[centralHeaderLen+nl:centralHeaderLen+nl+el], true); err != nil {
			return nil, err
		}
		out = append(out, e)
		p += centralHeaderLen + nl + el + cl
	}
	if uint64(len(out)) != end.entries {
		return nil, layoutErr("the central directory holds %d entries, the end record counts %d", len(out), end.entries)
	}
	return out, nil
}

// zip64Extra replaces the 32-bit fields that are saturated by the values
// in the zip64 extended information field. In a local header only the
// sizes may be there.
func (e *entry) zip64Extra(extra []byte, central bool) error {
	needU, needC := e.usize == max32, e.csize == max32
	needO := central && e.offset == max32
	if !needU && !needC && !needO {
		return nil
	}
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if len(extra) < 4+n {
			break
		}
		f := extra[4 : 4+n]
		extra = extra[4+n:]
		if id != zip64ExtraID {
			continue
		}
		for _, v := range []struct {
			need bool
			dst  *uint64
		}{{needU, &e.usize}, {needC, &e.csize}, {needO, &e.offset}} {
			if !v.need {
				continue
			}
			if len(f) < 8 {
				return layoutErr("%s: zip64 field too short", e.name)
			}
			*v.dst, f = le.Uint64(f), f[8:]
		}
		e.zip64 = true
		return nil
	}
	return layoutErr("%s: saturated size or offset without a zip64 field", e.name)
}

// readZipEntries checks the whole layout of a zip against its central
// directory (zr's list, parsed by archive/zip from the same bytes) and
// returns each file's contents in order. keep is called with each entry's
// name and uncompressed size before it is read, to enforce limits.
func readZipEntries(r io.ReaderAt, size int64, zr *zip.Reader, keep func(name string, usize uint64) error) ([][]byte, error) {
	end, err := readEnd(r, size)
	if err != nil {
		return nil, err
	}
	central, err := readCentral(r, end)
	if err != nil {
		return nil, err
	}
	if len(central) != len(zr.File) {
		return nil, layoutErr("the central directory lists %d entries, archive/zip read %d", len(central), len(zr.File))
	}
	out := make([][]byte, len(central))
	var pos uint64
	for i, e := range central {
		if e.name != zr.File[i].Name {
			return nil, layoutErr("entry %d is %q in one reading and %q in another", i, e.name, zr.File[i].Name)
		}
		if e.offset != pos {
			return nil, layoutErr("%s: its local header is at %d, but the previous entry ends at %d (bytes between entries)", e.name, e.offset, pos)
		}
		if err := keep(e.name, e.usize); err != nil {
			return nil, err
		}
		next, data, err := readLocal(r, e, end.cdOffset)
		if err != nil {
			return nil, err
		}
		out[i], pos = data, next
	}
	if pos != end.cdOffset {
		return nil, layoutErr("%d bytes between the last entry and the central directory", end.cdOffset-pos)
	}
	return out, nil
}

// readLocal checks one entry's local header against its central record,
// reads its data (which must be exactly csize bytes of stored or deflated
// content, with the stated CRC and size) and any data descriptor, and
// returns where the next local header must begin.
func readLocal(r io.ReaderAt, e entry, limit uint64) (uint64, []byte, error) {
	le := binary.LittleEndian
	h := make([]byte, localHeaderLen)
	if e.offset+localHeaderLen > limit {
		return 0, nil, layoutErr("%s: local header runs into the central directory", e.name)
	}
	if _, err := r.ReadAt(h, int64(e.offset)); err != nil {
		return 0, nil, err
	}
	if le.Uint32(h) != sigLocal {
		return 0, nil, layoutErr("%s: no local header where the central directory says", e.name)
	}
	nl, el := uint64(le.Uint16(h[26:])), uint64(le.Uint16(h[28:]))
	dataAt := e.offset + localHeaderLen + nl + el
	if dataAt > limit {
		return 0, nil, layoutErr("%s: local header runs into the central directory", e.name)
	}
	ne := make([]byte, nl+el)
	if _, err := r.ReadAt(ne, int64(e.offset+localHeaderLen)); err != nil {
		return 0, nil, err
	}
	flags, method := le.Uint16(h[6:]), le.Uint16(h[8:])
	switch {
	case string(ne[:nl]) != e.name:
		return 0, nil, layoutErr("%q: its local header names %q", e.name, ne[:nl])
	case flags != e.flags || method != e.method || le.Uint16(h[10:]) != e.modTime || le.Uint16(h[12:]) != e.modDate:
		return 0, nil, layoutErr("%s: local header and central directory disagree on flags, method or time", e.name)
	case e.flags&flagEncrypted != 0:
		return 0, nil, layoutErr("%s: encrypted entry", e.name)
	case method != zip.Store && method != zip.Deflate:
		return 0, nil, layoutErr("%s: compression method %d", e.name, method)
	case method == zip.Store && flags&flagDescriptor != 0:
		return 0, nil, layoutErr("%s: stored entry with a data descriptor (its end cannot be found by reading forward)", e.name)
	case method == zip.Store && e.csize != e.usize:
		return 0, nil, layoutErr("%s: stored entry whose sizes differ", e.name)
	}
	if flags&flagDescriptor == 0 {
		l := entry{name: e.name, crc: le.Uint32(h[14:]), csize: uint64(le.Uint32(h[18:])), usize: uint64(le.Uint32(h[22:]))}
		if err := l.zip64Extra(ne[nl:], false); err != nil {
			return 0, nil, err
		}
		if l.crc != e.crc || l.csize != e.csize || l.usize != e.usize {
			return 0, nil, layoutErr("%s: local header and central directory disagree on CRC or sizes", e.name)
		}
	}
	if dataAt+e.csize > limit || dataAt+e.csize < dataAt {
		return 0, nil, layoutErr("%s: data runs into the central directory", e.name)
	}
	data, err := readData(io.NewSectionReader(r, int64(dataAt), int64(e.csize)), e)
	if err != nil {
		return 0, nil, err
	}
	next := dataAt + e.csize
	if flags&flagDescriptor != 0 {
		if next, err = readDescriptor(r, e, next, limit); err != nil {
			return 0, nil, err
		}
	}
	return next, data, nil
}

// readData decompresses exactly the entry's compressed bytes and checks
// the result's size and CRC. A deflate stream that ends before them would
// leave bytes that a streaming extractor reads as something else.
func readData(sr *io.SectionReader, e entry) ([]byte, error) {
	if e.usize > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", e.name, MaxFileBytes)
	}
	var data []byte
	if e.method == zip.Store {
		data = make([]byte, e.csize)
		if _, err := io.ReadFull(sr, data); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
	} else {
		cr := &countingReader{r: sr}
		br := bufio.NewReader(cr)
		fr := flate.NewReader(br)
		var err error
		data, err = io.ReadAll(io.LimitReader(fr, int64(e.usize)+1))
		fr.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if used := cr.n - int64(br.Buffered()); used != int64(e.csize) {
			return nil, layoutErr("%s: its deflate stream is %d bytes, its stated size %d", e.name, used, e.csize)
		}
	}
	if uint64(len(data)) != e.usize || crc32.ChecksumIEEE(data) != e.crc {
		return nil, layoutErr("%s: content does not match its stated size or CRC", e.name)
	}
	return data, nil
}

// readDescriptor checks the data descriptor after an entry's data (with
// its optional signature, and 64-bit sizes for a zip64 entry).
func readDescriptor(r io.ReaderAt, e entry, at, limit uint64) (uint64, error) {
	le := binary.LittleEndian
	n := uint64(12)
	if e.zip64 || e.csize >= max32 || e.usize >= max32 {
		n = 20
	}
	if at+4+n > limit {
		return 0, layoutErr("%s: data descriptor runs into the central directory", e.name)
	}
	b := make([]byte, 4+n)
	if _, err := r.ReadAt(b, int64(at)); err != nil {
		return 0, err
	}
	if le.Uint32(b) != sigDescriptor {
		return 0, layoutErr("%s: data descriptor without its signature", e.name)
	}
	crc := le.Uint32(b[4:])
	var cs, us uint64
	if n == 20 {
		cs, us = le.Uint64(b[8:]), le.Uint64(b[16:])
	} else {
		cs, us = uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	}
	if crc != e.crc || cs != e.csize || us != e.usize {
		return 0, layoutErr("%s: data descriptor and central directory disagree", e.name)
	}
	return at + 4 + n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
