package config

import (
	"fmt"
	"net"
)

// Debug holds debugging settings, all off by default.
type Debug struct {
	// PprofAddr, when set (PPROF_ADDR, e.g. 127.0.0.1:6060), is where the process serves
	// net/http/pprof: CPU, heap and goroutine profiles for whoever measures it (`make bench
	// -profile`). Off when empty, which is the default; it is a debugging aid, to be turned on in
	// production only when asked, and then on a loopback or otherwise private address.
	PprofAddr string
}

func (c *Config) loadDebug(str func(name, def string) string) []error {
	c.PprofAddr = str("PPROF_ADDR", "")
	if c.PprofAddr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(c.PprofAddr); err != nil || port == "" {
		return []error{fmt.Errorf("PPROF_ADDR: %q is not host:port (e.g. 127.0.0.1:6060)", c.PprofAddr)}
	}
	return nil
}
