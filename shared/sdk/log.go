package sdk

import (
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

var (
	// realStderr is fd 2 as the process started. go-plugin's Serve later
	// points os.Stderr at a pipe that is forwarded as raw output; log lines
	// must go to the real stderr, which go-plugin parses as JSON log entries.
	realStderr = os.Stderr

	logOnce sync.Once
	logger  *slog.Logger
)

func logLevel() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv("HARDEN_PLUGIN_LOG_LEVEL")); l != hclog.NoLevel {
		return l
	}
	// The host always sets the level (--log-level); without a host (tests,
	// in-process use) only warnings and errors are worth printing.
	return hclog.Warn
}

// Log returns the plugin's logger. It writes one JSON object per line on
// stderr in the form the host re-logs under the plugin's name. Never log
// secrets (Target.Secret values, private keys).
func Log() *slog.Logger {
	logOnce.Do(func() {
		level := slog.LevelInfo
		switch logLevel() {
		case hclog.Trace, hclog.Debug:
			level = slog.LevelDebug
		case hclog.Warn:
			level = slog.LevelWarn
		case hclog.Error:
			level = slog.LevelError
		}
		logger = slog.New(slog.NewJSONHandler(realStderr, &slog.HandlerOptions{
			Level: level,
			// Rename the standard keys to hclog's (@level, @message,
			// @timestamp) so go-plugin parses the line as a log entry.
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) > 0 {
					return a
				}
				switch a.Key {
				case slog.TimeKey:
					// go-plugin parses exactly this layout.
					a.Key, a.Value = "@timestamp", slog.StringValue(a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
				case slog.LevelKey:
					a.Key, a.Value = "@level", slog.StringValue(strings.ToLower(a.Value.String()))
				case slog.MessageKey:
					a.Key = "@message"
				}
				return a
			},
		}))
	})
	return logger
}
