// Package logging builds the process's slog logger from the settings.
package logging

import (
	"log/slog"
	"os"
	"strings"

	"github.com/onboarding-service/onboarding/internal/config"
)

// New returns a logger writing JSON or text to stderr at LOG_LEVEL, tagged with the process.
func New(cfg config.Config, process string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("process", process)
}
