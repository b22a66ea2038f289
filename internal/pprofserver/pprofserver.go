// Package pprofserver serves net/http/pprof on a listener of its own, for the API's and the
// worker's PPROF_ADDR setting (off by default). Profiles are never on the public listener: the
// handlers are mounted on this server's own mux only.
package pprofserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	// The import also registers the handlers on http.DefaultServeMux; no server of the service
	// serves that mux, so they are reachable only here.
	"net/http/pprof"
	"time"
)

// Start listens on addr and serves /debug/pprof/ there until the returned stop is called.
func Start(addr string, logger *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, allocs, block, mutex...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PPROF_ADDR: %w", err)
	}
	// No write timeout: a CPU profile or a trace answers after the seconds it was asked for.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "error", err)
		}
	}()
	logger.Warn("pprof on: profiling endpoints served (a debugging setting; unset PPROF_ADDR to turn it off)",
		"addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}
