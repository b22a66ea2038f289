package main

import (
	"bytes"
	"io"
	"sync"
)

// lockedWriter makes each Write atomic with respect to the others.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter writes each complete line with a prefix, in one Write to dst.
type prefixWriter struct {
	dst    io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

// maxLine bounds the buffer for a child that writes a very long line without a newline.
const maxLine = 64 << 10

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			return len(p), nil
		}
		if i < 0 {
			i = len(w.buf) - 1
		}
		if err := w.emit(w.buf[:i+1]); err != nil {
			return len(p), err
		}
		w.buf = w.buf[i+1:]
	}
}

// Flush writes a last line that had no newline.
func (w *prefixWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_ = w.emit(w.buf)
		w.buf = nil
	}
}

func (w *prefixWriter) emit(line []byte) error {
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(append(out, w.prefix...), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err := w.dst.Write(out)
	return err
}
