package ring

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter turns memberlist's log.Logger lines into slog records at debug
// level: its [WARN]/[ERR] lines are routine during failure detection (a
// failed probe is how a dead node is found) and would drown real warnings.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	if w.log.Enabled(context.Background(), slog.LevelDebug) {
		w.log.Debug(string(bytes.TrimSpace(p)), slog.String("component", "memberlist"))
	}
	return len(p), nil
}
