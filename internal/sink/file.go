package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/writhq/writ/internal/config"
)

// fileSink appends one JSON record per line to a file, fsynced before a
// delivery returns. Past maxBytes the file is rotated: path becomes
// path.1, path.1 becomes path.2, …, and path.<maxFiles> is deleted.
type fileSink struct {
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	buf      bytes.Buffer
}

func newFileSink(c config.SinkConfig) *fileSink {
	return &fileSink{path: c.Path, maxBytes: c.MaxBytes, maxFiles: c.MaxFiles}
}

// open opens the file for appending. A last line without its newline (a
// write a crash cut short) is cut off: its events were not acknowledged,
// so they are delivered again.
func (s *fileSink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return err
	}
	size, err := completeLines(f)
	if err == nil {
		_, err = f.Seek(size, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.f, s.size = f, size
	return nil
}

// completeLines truncates f after its last newline and returns its size.
func completeLines(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	end := size
	var tail [4096]byte
	for end > 0 {
		n := int64(len(tail))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(tail[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(tail[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return size, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	return end, f.Sync()
}

func (s *fileSink) deliver(_ context.Context, msgs []Message) error {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	s.buf.Reset()
	for _, m := range msgs {
		line := int64(len(m.Body) + 1)
		if s.size+int64(s.buf.Len()) > 0 && s.size+int64(s.buf.Len())+line > s.maxBytes {
			if err := s.flush(); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
		}
		s.buf.Write(m.Body)
		s.buf.WriteByte('\n')
	}
	return s.flush()
}

// flush writes the buffered lines and makes them durable.
func (s *fileSink) flush() error {
	if s.buf.Len() == 0 {
		return nil
	}
	n, err := s.f.Write(s.buf.Bytes())
	s.size += int64(n)
	s.buf.Reset()
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// What was written in part is cut off when the file is opened
		// again, before the events are delivered once more.
		s.f.Close()
		s.f = nil
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

// rotate shifts the rotated files up by one and starts a new file.
func (s *fileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		s.f = nil
		return err
	}
	s.f = nil
	rotated := func(i int) string { return s.path + "." + strconv.Itoa(i) }
	if err := os.Remove(rotated(s.maxFiles)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := s.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(rotated(i), rotated(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(s.path, rotated(1)); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	return s.open()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
