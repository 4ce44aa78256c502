package procs

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Logger writes a benchmark's progress, a line "15:04:05 name: message"
// each, to stderr and, while a file is set, to that file too (the run's
// own log beside its results).
type Logger struct {
	Name string

	mu   sync.Mutex
	file io.Writer
}

// Logf writes one line.
func (l *Logger) Logf(format string, args ...any) {
	line := fmt.Sprintf("%s %s: %s\n", time.Now().UTC().Format("15:04:05"), l.Name, fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = os.Stderr.WriteString(line)
	if l.file != nil {
		_, _ = io.WriteString(l.file, line)
	}
}

// SetFile makes the lines go to w as well; nil stops that.
func (l *Logger) SetFile(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file = w
}
